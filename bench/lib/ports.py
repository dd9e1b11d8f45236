"""ports.py N: N distinct free TCP ports on 127.0.0.1, below the ephemeral range (so no
other program's port-0 listener or outgoing connection takes them), on one line."""

import random
import socket
import sys

n = int(sys.argv[1])
ports = []
for _ in range(100 * n + 1000):
    if len(ports) == n:
        break
    p = random.randrange(20000, 32000)
    if p in ports:
        continue
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
        ports.append(p)
    except OSError:
        pass
    finally:
        s.close()
if len(ports) < n:
    sys.exit("ports.py: not enough free ports")
print(*ports)
