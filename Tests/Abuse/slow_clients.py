#!/usr/bin/env python3
"""Thousands of slow TCP clients (loopback only) while UDP must keep answering.

usage: slow_clients.py PORT COUNT SECONDS

Opens COUNT connections from 127.0.7.x sources (spread so that no address reaches the per-client
limit), each sending one octet of a length prefix and then nothing, and keeps them open SECONDS,
re-opening what the server closes. Meanwhile one UDP query every 50 ms must be answered. Prints
JSON: connections accepted at once, UDP answered/asked; exit 1 when UDP missed any.
"""
import json
import resource
import socket
import struct
import sys
import time

PORT, COUNT, SECONDS = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, COUNT + 256), hard))

conns = []
refused = 0
for i in range(COUNT):
    s = socket.socket()
    s.setblocking(False)
    s.bind((f"127.0.7.{1 + i % 200}", 0))
    try:
        s.connect(("127.0.0.1", PORT))
    except BlockingIOError:
        pass
    except OSError:
        refused += 1
        s.close()
        continue
    conns.append(s)
time.sleep(0.5)
for s in conns:
    try:
        s.send(b"\x00")
    except OSError:
        pass

udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.settimeout(1)
q = struct.pack("!HHHHHH", 1, 0, 1, 0, 0, 0) + b"\x07example\x03com\x00" + struct.pack("!HH", 6, 1)
asked = answered = 0
t0 = time.monotonic()
while time.monotonic() - t0 < SECONDS:
    asked += 1
    udp.sendto(q, ("127.0.0.1", PORT))
    try:
        r = udp.recv(4096)
        if r[:2] == q[:2] and r[3] & 0xF == 0:
            answered += 1
    except socket.timeout:
        pass
    time.sleep(0.05)
open_now = 0
for s in conns:
    try:
        s.recv(1)
    except BlockingIOError:
        open_now += 1
    except OSError:
        pass
for s in conns:
    s.close()
print(json.dumps({"connections": len(conns), "refused": refused, "still-open": open_now,
                  "udp-asked": asked, "udp-answered": answered}))
sys.exit(0 if answered == asked else 1)
