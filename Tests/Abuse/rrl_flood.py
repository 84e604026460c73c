#!/usr/bin/env python3
"""Response rate limiting against the real server, as knot's and NSD's RRL tests do it: floods from
several loopback sources in different /24 prefixes, counted within tolerance bands.

usage: rrl_flood.py PORT RATE BURST SLIP

Prints one JSON object with the counts and exits 1 when a band is missed. Traffic goes to
127.0.0.1 only, from 127.0.x.y sources (all of 127/8 is loopback on Linux).
"""
import json
import os
import random
import socket
import struct
import sys
import time

PORT, RATE, BURST, SLIP = (int(a) for a in sys.argv[1:5])


def name(text):
    out = b""
    for label in text.strip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def query(qid, qname="example.com", qtype=6, cookie=None):
    """A query with EDNS; with `cookie` (8 or 24 octets) a COOKIE option."""
    opts = b""
    if cookie is not None:
        opts = struct.pack("!HH", 10, len(cookie)) + cookie
    opt = b"\0" + struct.pack("!HHIH", 41, 1232, 0, len(opts)) + opts
    return struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 1) + name(qname) + struct.pack("!HH", qtype, 1) + opt


def parse(resp):
    """(rcode with the extended bits, TC, ANCOUNT, cookie option data or None)."""
    qid, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", resp[:12])
    rcode = flags & 0xF
    cookie = None
    i = 12
    for _ in range(qd):
        while resp[i] != 0:
            i += resp[i] + 1 if resp[i] < 0xC0 else 1
            if resp[i - 1] >= 0xC0:
                break
        i += 1 + 4
    # Skip answer and authority records, then read the OPT.
    def skip_name(i):
        while True:
            if resp[i] == 0:
                return i + 1
            if resp[i] >= 0xC0:
                return i + 2
            i += resp[i] + 1
    for _ in range(an + ns):
        i = skip_name(i)
        rdlen = struct.unpack("!H", resp[i + 8:i + 10])[0]
        i += 10 + rdlen
    for _ in range(ar):
        j = skip_name(i)
        rtype, _, ttl, rdlen = struct.unpack("!HHIH", resp[j:j + 10])
        if rtype == 41:
            rcode |= (ttl >> 24) << 4
            k = j + 10
            while k < j + 10 + rdlen:
                code, length = struct.unpack("!HH", resp[k:k + 4])
                if code == 10:
                    cookie = resp[k + 4:k + 4 + length]
                k += 4 + length
        i = j + 10 + rdlen
    return rcode, bool(flags & 0x0200), an, cookie


def sock(source):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((source, 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    return s


def ask(s, packet, timeout=1.0):
    s.settimeout(timeout)
    s.sendto(packet, ("127.0.0.1", PORT))
    try:
        return s.recv(4096)
    except socket.timeout:
        return None


def flood(s, count, seconds, cookie=None):
    """Sends `count` queries spread over `seconds`, then collects replies for a second."""
    s.setblocking(False)
    start = time.monotonic()
    sent = 0
    replies = []
    while sent < count:
        due = start + seconds * sent / count
        now = time.monotonic()
        if now < due:
            time.sleep(min(due - now, 0.002))
        try:
            s.sendto(query(sent & 0xFFFF, cookie=cookie), ("127.0.0.1", PORT))
            sent += 1
        except BlockingIOError:
            time.sleep(0.001)
        try:
            while True:
                replies.append(s.recv(4096))
        except BlockingIOError:
            pass
    elapsed = time.monotonic() - start
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        try:
            replies.append(s.recv(4096))
        except BlockingIOError:
            time.sleep(0.005)
    full = tc = bad = 0
    for r in replies:
        rcode, trunc, an, _ = parse(r)
        if rcode == 23:
            bad += 1
        elif trunc:
            tc += 1
        elif an > 0:
            full += 1
    return {"sent": sent, "seconds": round(elapsed, 3), "full": full, "tc": tc, "badcookie": bad,
            "dropped": sent - len(replies)}


result = {}
failures = []

# Before the flood: a client on the flooded /24 learns its server cookie (first contact: a normal
# answer with a fresh cookie), and the cookie is valid when sent back.
holder = sock("127.0.1.2")
r = ask(holder, query(1, cookie=os.urandom(8)))
rcode, _, an, cookie = parse(r)
if rcode != 0 or an == 0 or cookie is None or len(cookie) != 24:
    failures.append(f"first contact with a client cookie: rcode {rcode}, answers {an}, cookie {cookie!r}")
    cookie = os.urandom(24)

# The flood: 4x the rate for 2 seconds from 127.0.1.1.
flooder = sock("127.0.1.1")
seconds = 2.0
count = int(RATE * 4 * seconds) + BURST
result["flood"] = flood(flooder, count, seconds)
f = result["flood"]
expected_full = BURST + RATE * f["seconds"]
if not (0.7 * expected_full <= f["full"] <= 1.3 * expected_full + 10):
    failures.append(f"flood: {f['full']} full answers, expected about {expected_full:.0f} (burst + rate x time)")
limited = f["sent"] - f["full"]
if SLIP > 0:
    expected_tc = limited / SLIP
    if not (0.7 * expected_tc - 5 <= f["tc"] <= 1.3 * expected_tc + 5):
        failures.append(f"flood: {f['tc']} truncated, expected about {expected_tc:.0f} (1 in {SLIP} of {limited} limited)")
elif f["tc"] != 0:
    failures.append(f"flood: {f['tc']} truncated with slip 0")

# While the prefix is still over its rate: the cookie holder on it is answered in full every time,
# a client with a client cookie alone gets BADCOOKIE slips instead of TC, and another /24 is untouched.
flooder2 = sock("127.0.1.3")
result["cookie-client"] = flood(flooder2, RATE * 2, 0.5, cookie=os.urandom(8))
c = result["cookie-client"]
if c["tc"] != 0 or (SLIP > 0 and c["badcookie"] == 0):
    failures.append(f"client cookie on a limited prefix: {c['tc']} TC, {c['badcookie']} BADCOOKIE (expected BADCOOKIE slips, no TC)")
held = 0
for k in range(20):
    r = ask(holder, query(100 + k, cookie=cookie))
    if r is not None and parse(r)[0] == 0 and parse(r)[2] > 0:
        held += 1
    # Keep the prefix over its rate meanwhile.
    for _ in range(RATE // 10):
        try:
            flooder.sendto(query(7), ("127.0.0.1", PORT))
        except BlockingIOError:
            pass
result["cookie-holder-answered"] = held
if held != 20:
    failures.append(f"valid server cookie on a limited prefix: {held} of 20 answered in full")

other = sock("127.0.2.1")
answered = 0
for k in range(20):
    r = ask(other, query(200 + k))
    if r is not None and parse(r)[0] == 0 and not parse(r)[1] and parse(r)[2] > 0:
        answered += 1
    time.sleep(0.01)
result["other-prefix-answered"] = answered
if answered != 20:
    failures.append(f"another /24 during the flood: {answered} of 20 answered in full")

# After a quiet second the flooded prefix is answered again.
time.sleep(1.0)
r = ask(flooder, query(9), timeout=1.0) if flooder.setblocking(True) is None else None
result["after-quiet"] = r is not None and not parse(r)[1] and parse(r)[2] > 0
if not result["after-quiet"]:
    failures.append("the flooded prefix is not answered again after a quiet second")

result["failures"] = failures
print(json.dumps(result))
sys.exit(1 if failures else 0)
