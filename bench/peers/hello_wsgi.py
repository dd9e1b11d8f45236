"""The WSGI hello of bench/run's Python peers: "Hello, world!\\n" as text/plain.

    python hello_wsgi.py flup-fcgi 127.0.0.1:9000 | unix:/tmp/hello.sock
    python hello_wsgi.py flup-scgi 127.0.0.1:4000 | unix:/tmp/hello.sock
    python hello_wsgi.py waitress 127.0.0.1:8000
    python hello_wsgi.py wsgiref 127.0.0.1:8000
    gunicorn -w 4 -b 127.0.0.1:8000 hello_wsgi:app
"""

import sys

BODY = b"Hello, world!\n"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def app(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]


def bind_address(addr):
    if addr.startswith("unix:"):
        return addr[5:]
    host, port = addr.rsplit(":", 1)
    return (host, int(port))


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    kind, addr = sys.argv[1], sys.argv[2]
    if kind in ("flup-fcgi", "flup-scgi"):
        if kind == "flup-fcgi":
            from flup.server.fcgi import WSGIServer
        else:
            from flup.server.scgi import WSGIServer
        import logging

        bound = bind_address(addr)
        kwargs = {"bindAddress": bound}
        if kind == "flup-scgi":
            # flup's SCGI server logs every request at INFO by default; no access log here,
            # as for every other target.
            kwargs["loggingLevel"] = logging.WARNING
        server = WSGIServer(app, **kwargs)
        if isinstance(bound, str):
            # flup makes the socket with the umask's mode; open it to the web server.
            import os
            import threading

            def chmod_when_there():
                import time

                for _ in range(100):
                    if os.path.exists(bound):
                        os.chmod(bound, 0o666)
                        return
                    time.sleep(0.05)

            threading.Thread(target=chmod_when_there, daemon=True).start()
        server.run()
    elif kind == "waitress":
        import logging

        import waitress

        # No "Task queue depth" warnings on stderr: the benchmark keeps the queue full.
        logging.getLogger("waitress.queue").setLevel(logging.ERROR)
        host, port = bind_address(addr)
        waitress.serve(app, host=host, port=port, threads=4, _quiet=True)
    elif kind == "wsgiref":
        from wsgiref.simple_server import WSGIRequestHandler, make_server

        class Quiet(WSGIRequestHandler):
            def log_message(self, *args):
                pass

        host, port = bind_address(addr)
        make_server(host, port, app, handler_class=Quiet).serve_forever()
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
