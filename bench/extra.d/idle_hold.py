#!/usr/bin/env python3
"""Hold N idle HTTP/1.1 keep-alive connections to HOST:PORT.

Each connection sends one `GET PATH` and reads its whole answer
(Content-Length framing), then stays open and silent. When all are done
the script prints `held K failed F` on stdout and keeps the connections
open until it is sent SIGTERM or HOLD seconds pass; then it closes them
and exits. Everything is bounded: connections are opened in batches of
at most BATCH in flight, and the whole opening phase has a deadline.

Usage: idle_hold.py HOST PORT N [PATH] [HOLD_SECONDS]
"""

import resource
import selectors
import signal
import socket
import sys
import time

BATCH = 256
OPEN_DEADLINE = 120.0


def main():
    host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    path = sys.argv[4] if len(sys.argv) > 4 else "/hello"
    hold = float(sys.argv[5]) if len(sys.argv) > 5 else 300.0
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()

    sel = selectors.DefaultSelector()
    held, failed, started = [], 0, 0
    deadline = time.monotonic() + OPEN_DEADLINE

    def start_one():
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex((host, port))
        sel.register(s, selectors.EVENT_WRITE, {"sent": False, "buf": b""})

    while (started < count or sel.get_map()) and time.monotonic() < deadline:
        while started < count and len(sel.get_map()) < BATCH:
            try:
                start_one()
            except OSError:
                failed += 1
            started += 1
        for key, _ in sel.select(timeout=1.0):
            s, st = key.fileobj, key.data
            try:
                if not st["sent"]:
                    s.sendall(request)
                    st["sent"] = True
                    sel.modify(s, selectors.EVENT_READ, st)
                    continue
                chunk = s.recv(65536)
                if not chunk:
                    raise OSError("closed")
                st["buf"] += chunk
                head, sep, body = st["buf"].partition(b"\r\n\r\n")
                if not sep:
                    continue
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                if len(body) >= length:
                    sel.unregister(s)
                    held.append(s)
            except OSError:
                sel.unregister(s)
                s.close()
                failed += 1
    for key in list(sel.get_map().values()):
        sel.unregister(key.fileobj)
        key.fileobj.close()
        failed += 1
    failed += count - started

    print(f"held {len(held)} failed {failed}", flush=True)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    end = time.monotonic() + hold
    while not stop and time.monotonic() < end:
        time.sleep(0.2)
    for s in held:
        s.close()


if __name__ == "__main__":
    main()
