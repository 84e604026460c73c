#!/usr/bin/env python3
"""Abusive TCP clients against the real server (loopback only), then checks it still answers.

usage: tcp_abuse.py PORT MESSAGE_TIMEOUT PER_CLIENT

Each abuse must end with the server closing the connection within the message timeout (plus
slack), never holding it: garbage, a 0xFFFF length with a few octets, half a frame, one octet then
silence, one octet every 0.4 s (each octet would reset an idle timer). Then the per-client limit,
and a client that pipelines thousands of queries without reading the answers (the server must stop
reading; its memory must not grow with what the client sends). Prints JSON; exit 1 on a failure.
"""
import json
import os
import socket
import struct
import sys
import time

PORT, TIMEOUT, PER_CLIENT = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
failures = []
result = {}


def query(qid, name=b"\x07example\x03com\x00", qtype=6):
    return struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 0) + name + struct.pack("!HH", qtype, 1)


def connect(source="127.0.0.1"):
    s = socket.socket()
    s.bind((source, 0))
    s.settimeout(5)
    s.connect(("127.0.0.1", PORT))
    return s


def closed_within(s, seconds, trickle=None):
    """Seconds until the server closes `s` (EOF or reset), or None past `seconds`."""
    t0 = time.monotonic()
    s.settimeout(0.1)
    while time.monotonic() - t0 < seconds:
        try:
            if trickle is not None:
                s.send(trickle)
            data = s.recv(65536)
            if data == b"":
                return time.monotonic() - t0
        except socket.timeout:
            pass
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - t0
        time.sleep(0.4 if trickle is not None else 0)
    return None


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


abuses = {
    "garbage": os.urandom(7),
    "length 0xFFFF, 10 octets": b"\xff\xff" + os.urandom(10),
    "half a frame": struct.pack("!H", 40) + query(1)[:20],
    "one octet then silence": b"\x00",
}
for what, data in abuses.items():
    s = connect()
    s.sendall(data)
    took = closed_within(s, TIMEOUT + 3)
    result[what] = took
    if took is None:
        failures.append(f"{what}: still open after {TIMEOUT + 3} s")
    s.close()

s = connect()
took = closed_within(s, TIMEOUT + 3, trickle=b"\x00")
result["one octet every 0.4 s"] = took
if took is None:
    failures.append("one octet every 0.4 s: still open: each octet must not extend the deadline of the message")
s.close()

# Per client: PER_CLIENT connections are kept; the next ones from that address are closed at once;
# another address is not affected.
held = [connect("127.0.6.1") for _ in range(PER_CLIENT)]
time.sleep(0.2)
extra = connect("127.0.6.1")
took = closed_within(extra, 1.0)
result["connection over the per-client limit closed after"] = took
if took is None:
    failures.append(f"connection {PER_CLIENT + 1} from one address was not closed")
other = connect("127.0.6.2")
other.sendall(struct.pack("!H", len(query(7))) + query(7))
other.settimeout(3)
try:
    length = struct.unpack("!H", other.recv(2))[0]
    result["other address answered"] = length > 12
except Exception as e:
    failures.append(f"another address while one is at its limit: {e}")
for c in held + [extra, other]:
    c.close()

# A client that never reads: 200,000 pipelined queries (about 6 MB), answers never taken.
pid = int(sys.argv[4]) if len(sys.argv) > 4 else None
before = rss_kib(pid) if pid else 0
s = connect()
s.setblocking(False)
frame = struct.pack("!H", len(query(9))) + query(9)
blob = frame * 2000
sent = 0
t0 = time.monotonic()
while sent < 200_000 and time.monotonic() - t0 < 10:
    try:
        n = s.send(blob)
        sent += n // len(frame)
    except BlockingIOError:
        time.sleep(0.01)
        # The server stopped reading: it holds what it read, not what we send.
        if time.monotonic() - t0 > 3:
            break
    except OSError as e:
        result["pipelining client closed by the server"] = str(e)
        break
result["pipelined queries the server accepted while not read"] = sent
time.sleep(0.5)
after = rss_kib(pid) if pid else 0
result["rss growth KiB"] = after - before
if pid and after - before > 64 * 1024:
    failures.append(f"memory grew by {(after - before) // 1024} MiB for a client that does not read")
s.close()

result["failures"] = failures
print(json.dumps(result))
sys.exit(1 if failures else 0)
