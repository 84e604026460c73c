#!/usr/bin/env python3
"""A fake BIRD control socket that hangs: it accepts connections and never says a word (mode
`silent`), or never accepts them at all (mode `noaccept`: its backlog fills and connect would block).

usage: hung_bird.py SOCKET_PATH MODE LIFETIME
"""
import os
import socket
import sys
import time

path, mode, lifetime = sys.argv[1], sys.argv[2], float(sys.argv[3])
if os.path.exists(path):
    os.unlink(path)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
s.listen(0 if mode == "noaccept" else 16)
held = []
end = time.monotonic() + lifetime
s.settimeout(0.2)
while time.monotonic() < end:
    if mode == "noaccept":
        time.sleep(0.2)
        continue
    try:
        c, _ = s.accept()
        held.append(c)  # never read from, never written to
    except socket.timeout:
        pass
