#!/usr/bin/env python3
"""An etcd v3 JSON gateway that lies: for the tests of lodestar's cluster client against a hostile
peer (or anyone on the path to a plain http:// endpoint).

usage: lying_etcd.py PORT MODE [SECONDS [COUNTS]]
  neglen    every reply has Content-Length: -1
  bigrev    replies are well formed, with header revisions of 2^63-1
  watchrev  reads are fine; the watch sends an event whose mod_revision is 2^63-1, then a
            negative one, then a chunk size of -1
  garbage   replies are random octets
  rangeloop a range reply says more: true with the same last key every time
  dripwatch sane replies; the watch sends its headers, then one octet of a chunk every 0.5 s
  watcherr  sane replies; every watch answers with an error line and ends at once
Serves on 127.0.0.1 only, for SECONDS (default 60), then exits; counts requests on stdout, and
per path as JSON in the file COUNTS when given.
"""
import base64
import json
import os
import socket
import sys
import threading
import time

port, mode = int(sys.argv[1]), sys.argv[2]
seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 60
counts_file = sys.argv[4] if len(sys.argv) > 4 else None
counts = {}
lock = threading.Lock()
MAX = "9223372036854775807"
requests = 0


def body_of(path):
    if path == "/v3/lease/grant":
        return {"header": {"revision": MAX if mode == "bigrev" else "5"}, "ID": MAX, "TTL": "3"}
    if path == "/v3/lease/keepalive":
        return {"result": {"header": {"revision": MAX}, "ID": MAX, "TTL": "3"}}
    if path == "/v3/kv/range" and mode == "rangeloop":
        return {"header": {"revision": "7"}, "more": True, "count": "2",
                "kvs": [{"key": base64.b64encode(b"/lodestar/test/votes/na-1/zz").decode(),
                         "value": base64.b64encode(b'{"up": true, "reason": "x", "at": 1}').decode(),
                         "mod_revision": "7", "version": "1", "lease": "0"}]}
    if path == "/v3/kv/range" and mode in ("dripwatch", "watcherr"):
        return {"header": {"revision": "7"}, "count": "0", "kvs": []}
    if path == "/v3/lease/grant" and mode in ("dripwatch", "watcherr"):
        return {"header": {"revision": "7"}, "ID": "42", "TTL": "3"}
    if path == "/v3/lease/keepalive" and mode in ("dripwatch", "watcherr"):
        return {"result": {"header": {"revision": "7"}, "ID": "42", "TTL": "3"}}
    if path == "/v3/kv/range":
        return {"header": {"revision": MAX if mode == "bigrev" else "7"}, "count": "1",
                "kvs": [{"key": base64.b64encode(b"/lodestar/test/pops/other").decode(),
                         "value": base64.b64encode(b'{"at": 1e300, "host": "x"}').decode(),
                         "mod_revision": MAX, "version": MAX, "lease": "-5"}]}
    if path == "/v3/kv/txn":
        return {"header": {"revision": MAX}, "succeeded": True}
    return {"header": {"revision": MAX}}


def handle(conn):
    global requests
    conn.settimeout(5)
    try:
        data = b""
        while True:
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, data = data.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            path = lines[0].split(" ")[1]
            length = 0
            for l in lines[1:]:
                if l.lower().startswith("content-length:"):
                    length = int(l.split(":", 1)[1])
            while len(data) < length:
                data += conn.recv(65536)
            data = data[length:]
            requests += 1
            with lock:
                counts[path] = counts.get(path, 0) + 1
                if counts_file:
                    with open(counts_file + ".tmp", "w") as f:
                        json.dump(counts, f)
                    os.replace(counts_file + ".tmp", counts_file)
            if mode == "garbage":
                conn.sendall(os.urandom(300))
                return
            if mode == "neglen":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: -1\r\n\r\n{}")
                continue
            if path == "/v3/watch" and mode == "watchrev":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
                for rev in [MAX, "-9223372036854775808", "1e400"]:
                    ev = {"result": {"header": {"revision": rev}, "events": [{"type": "PUT", "kv": {
                        "key": base64.b64encode(b"/lodestar/test/votes/na-1/other").decode(),
                        "value": base64.b64encode(b'{"up": false}').decode(), "mod_revision": rev}}]}}
                    line = (json.dumps(ev) + "\n").encode()
                    conn.sendall(b"%x\r\n%s\r\n" % (len(line), line))
                    time.sleep(0.2)
                conn.sendall(b"-1\r\n")
                return
            if path == "/v3/watch" and mode == "dripwatch":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
                drip_end = time.time() + 30
                while time.time() < drip_end:
                    conn.sendall(b"1\r\n \r\n")
                    time.sleep(0.5)
                return
            if path == "/v3/watch" and mode == "watcherr":
                line = b'{"error": {"grpc_code": 14, "http_code": 503, "message": "boom"}}\n'
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
                conn.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(line), line))
                return
            body = json.dumps(body_of(path)).encode()
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    except (OSError, ValueError, IndexError):
        pass
    finally:
        conn.close()


s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(64)
s.settimeout(0.5)
end = time.time() + seconds
while time.time() < end:
    try:
        c, _ = s.accept()
    except socket.timeout:
        continue
    threading.Thread(target=handle, args=(c,), daemon=True).start()
    print(requests, flush=True)
