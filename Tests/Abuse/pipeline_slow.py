#!/usr/bin/env python3
"""A client that pipelines hard and reads its answers slowly (loopback only).

usage: pipeline_slow.py PORT COUNT [BYTES_PER_SECOND]

Writes COUNT framed queries as fast as the server takes them while reading the answers at
BYTES_PER_SECOND (default 2 MB/s), so that answers back up and the server pauses reading with a
message half read. Prints "answered N" (N answers received) and "reset" if the server closed
first. Bounded: 80 s at most.
"""
import socket
import struct
import sys
import threading
import time

port, count = int(sys.argv[1]), int(sys.argv[2])
rate = float(sys.argv[3]) if len(sys.argv) > 3 else 2_000_000
deadline = time.monotonic() + 80


def query(qid):
    q = struct.pack("!HHHHHH", qid & 0xFFFF, 0, 1, 0, 0, 0) + b"\x07example\x03com\x00" + struct.pack("!HH", 6, 1)
    return struct.pack("!H", len(q)) + q


s = socket.create_connection(("127.0.0.1", port), timeout=10)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
data = b"".join(query(i) for i in range(count))


def send():
    try:
        # Odd-sized pieces: the server's reads end in the middle of a message.
        for off in range(0, len(data), 1001):
            s.sendall(data[off:off + 1001])
    except OSError:
        pass


threading.Thread(target=send, daemon=True).start()
answered, buf, reset = 0, b"", False
t0 = time.monotonic()
got = 0
while answered < count and time.monotonic() < deadline:
    try:
        chunk = s.recv(8192)
    except socket.timeout:
        break
    except OSError:
        reset = True
        break
    if not chunk:
        reset = True
        break
    got += len(chunk)
    buf += chunk
    while len(buf) >= 2 and len(buf) >= 2 + struct.unpack("!H", buf[:2])[0]:
        n = struct.unpack("!H", buf[:2])[0]
        buf = buf[2 + n:]
        answered += 1
    # Pace to `rate` octets a second.
    ahead = got / rate - (time.monotonic() - t0)
    if ahead > 0:
        time.sleep(ahead)
print(f"answered {answered}" + (" reset" if reset else ""))
s.close()
