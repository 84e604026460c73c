#!/usr/bin/env python3
"""Test origins for the prober: HTTP listeners on loopback addresses whose behaviour the test
switches at run time.

    origin.py --control PORT [--certs DIR] ADDR:PORT[:tls=NAME|:dns] ...

`:tls=NAME` serves HTTPS with DIR/NAME.pem and DIR/NAME.key (see make_certs.py); `:dns` answers
DNS over UDP instead of HTTP (mode ok: NOERROR with one A record; 500: SERVFAIL; hang: silence;
garbage: 5 bytes).

Modes (GET http://127.0.0.1:CONTROL/mode?origin=ADDR:PORT&mode=M):
  ok       200 with body "ok"          500      500 "broken"
  hang     accept, never answer        garbage  bytes that are not HTTP
  reset    accept, close with RST      trickle  a valid response, one byte per second
  slow:MS  200 after MS milliseconds   down     stop listening (connection refused)
  chunked  200, chunked: "healthy" split across chunks, each chunk in its own write
  fail-from:ADDR[,ADDR]  500 to requests from those source addresses, 200 "ok" to others
  wrong-question (DNS) a NOERROR reply with the query's id but another question
GET /hits?origin=ADDR:PORT returns the number of connections accepted.
Everything listens on loopback only; the process exits on SIGTERM, or after --lifetime seconds.
"""
import argparse
import asyncio
import socket
import ssl
import struct
from urllib.parse import parse_qs, urlparse


class DNSResponder(asyncio.DatagramProtocol):
    def __init__(self, origin):
        self.origin = origin

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        self.origin.hits += 1
        mode = self.origin.mode
        if mode == "hang" or len(data) < 12:
            return
        if mode == "garbage":
            self.transport.sendto(b"\x00\x01\x02\x03\x04", addr)
            return
        end = 12
        while data[end] != 0:
            end += data[end] + 1
        question = data[12:end + 5]
        if mode == "wrong-question":
            question = b"\x05other\x07example\x00" + question[-4:]
        rcode = 2 if mode == "500" else 0
        answer = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x7f\x00\x00\x01" if rcode == 0 else b""
        header = data[:2] + bytes([0x84, rcode]) + b"\x00\x01" + (b"\x00\x01" if answer else b"\x00\x00") + b"\x00\x00\x00\x00"
        self.transport.sendto(header + question + answer, addr)


class Origin:
    def __init__(self, spec, certs):
        kind = spec.split(":")[-1] if not spec.startswith("[") else ""
        base = spec.rsplit(":", 1)[0] if (kind.startswith("tls=") or kind == "dns") else spec
        self.address, port = base.rsplit(":", 1)
        self.port = int(port)
        self.dns = kind == "dns"
        self.tls = None
        if kind.startswith("tls="):
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            name = kind[4:]
            self.tls.load_cert_chain(f"{certs}/{name}.pem", f"{certs}/{name}.key")
        self.key = f"{self.address}:{self.port}"
        self.mode = "ok"
        self.server = None
        self.hits = 0
        assert self.address.startswith("127.") or self.address == "::1", "loopback only"

    async def listen(self):
        if self.server is None and self.dns:
            loop = asyncio.get_running_loop()
            self.server, _ = await loop.create_datagram_endpoint(lambda: DNSResponder(self),
                                                                local_addr=(self.address, self.port))
        elif self.server is None:
            self.server = await asyncio.start_server(self.handle, self.address, self.port, ssl=self.tls,
                                                     reuse_address=True)

    async def close(self):
        if self.server is not None and self.dns:
            self.server.close()
            self.server = None
        elif self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None

    async def handle(self, reader, writer):
        self.hits += 1
        mode = self.mode
        # fail-from:A,B — 500 to requests from those source addresses, 200 "ok" to the rest (an
        # origin that only some vantage points cannot use).
        if mode.startswith("fail-from:"):
            peer = (writer.get_extra_info("peername") or ("",))[0]
            mode = "500" if peer in mode[len("fail-from:"):].split(",") else "ok"
        try:
            if mode == "hang":
                await asyncio.sleep(3600)
                return
            if mode == "reset":
                sock = writer.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
                return
            try:
                await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            except Exception:
                writer.close()
                return
            if mode == "garbage":
                writer.write(b"\x00\x01garbage that is not HTTP\r\n\r\n")
            elif mode == "chunked":
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
                for part in (b"status: hea", b"lt", b"hy\n"):
                    writer.write(b"%x\r\n%s\r\n" % (len(part), part))
                    await writer.drain()
                    await asyncio.sleep(0.02)
                writer.write(b"0\r\n\r\n")
            elif mode == "trickle":
                for b in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok":
                    writer.write(bytes([b]))
                    await writer.drain()
                    await asyncio.sleep(1)
            else:
                if mode.startswith("slow:"):
                    await asyncio.sleep(int(mode[5:]) / 1000)
                status, body = (500, b"broken") if mode == "500" else (200, b"ok")
                reason = b"OK" if status == 200 else b"Internal Server Error"
                writer.write(b"HTTP/1.1 %d %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                             % (status, reason, len(body), body))
            await writer.drain()
        except Exception:
            pass
        finally:
            try:
                writer.close()
            except Exception:
                pass


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--control", type=int, required=True)
    ap.add_argument("--certs")
    ap.add_argument("--lifetime", type=float, default=900, help="seconds before exiting on its own")
    ap.add_argument("origins", nargs="+")
    args = ap.parse_args()
    origins = {}
    for spec in args.origins:
        o = Origin(spec, args.certs)
        origins[o.key] = o
        await o.listen()

    async def control(reader, writer):
        try:
            line = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            url = urlparse(line.split(b" ")[1].decode())
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            o = origins.get(q.get("origin", ""))
            if o is None:
                status, body = 404, "no such origin"
            elif url.path == "/mode":
                mode = q.get("mode", "ok")
                if mode == "down":
                    await o.close()
                else:
                    await o.listen()
                o.mode = mode
                status, body = 200, mode
            elif url.path == "/hits":
                status, body = 200, str(o.hits)
            else:
                status, body = 404, "unknown path"
            data = body.encode()
            writer.write(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (status, len(data), data))
            await writer.drain()
        finally:
            writer.close()

    await asyncio.start_server(control, "127.0.0.1", args.control, reuse_address=True)
    print("ready", flush=True)
    await asyncio.sleep(args.lifetime)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
