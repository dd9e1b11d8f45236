"""wait_listening.py ADDR [SECONDS]: exit 0 once ADDR (HOST:PORT or unix:PATH) accepts a
connection, 1 if it does not within SECONDS (default 10). Only loopback is ever contacted."""

import socket
import sys
import time


def main():
    addr = sys.argv[1]
    limit = float(sys.argv[2]) if len(sys.argv) > 2 else 10.0
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        try:
            if addr.startswith("unix:"):
                s = socket.socket(socket.AF_UNIX)
                s.settimeout(1)
                s.connect(addr[5:])
            else:
                host, port = addr.rsplit(":", 1)
                s = socket.create_connection((host, int(port)), 1)
            s.close()
            return 0
        except OSError:
            time.sleep(0.1)
    return 1


sys.exit(main())
