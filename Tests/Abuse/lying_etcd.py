#!/usr/bin/env python3
"""An etcd v3 JSON gateway that lies: for the tests of lodestar's cluster client against a hostile
peer (or anyone on the path to a plain http:// endpoint).

usage: lying_etcd.py PORT MODE [SECONDS]
  neglen    every reply has Content-Length: -1
  bigrev    replies are well formed, with header revisions of 2^63-1
  watchrev  reads are fine; the watch sends an event whose mod_revision is 2^63-1, then a
            negative one, then a chunk size of -1
  garbage   replies are random octets
Serves on 127.0.0.1 only, for SECONDS (default 60), then exits; counts requests on stdout.
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
MAX = "9223372036854775807"
requests = 0


def body_of(path):
    if path == "/v3/lease/grant":
        return {"header": {"revision": MAX if mode == "bigrev" else "5"}, "ID": MAX, "TTL": "3"}
    if path == "/v3/lease/keepalive":
        return {"result": {"header": {"revision": MAX}, "ID": MAX, "TTL": "3"}}
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
