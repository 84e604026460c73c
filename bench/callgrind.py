#!/usr/bin/env python3
"""Instructions per query on the UDP receive loop's thread, counted by callgrind (exact and
repeatable, whatever else the machine is doing).

usage: callgrind.py WORKDIR LODESTAR_BIN [--queries N] [--only static,static-rrl,lb-ecs,lb-ecs-cached]

Workloads, each one lodestar process under `valgrind --tool=callgrind`, one UDP loop, queries
sent one at a time (so every receive batch holds one datagram):
  static         the benchmark's static mix (bench/gen_zone.py mix), answer cache on (4,096 slots)
  lb-ecs         www.gslb.test A, each query with an ECS option for a different random /24,
                 answer cache off: the load-balanced answer computed every time
  lb-ecs-cached  www.gslb.test A with one fixed ECS /24, answer cache on: answered from the cache
The load-balanced workloads use geo/sample.mmdb and bench.py's www.gslb.test configuration.

Instrumentation starts only once the server answers (`--instr-atstart=no`, then
`callgrind_control -i on`), so loading is not counted; the figure is the receive loop thread's
total (system-call wrappers included) divided by the queries sent. valgrind 3.19 cannot read this
toolchain's DWARF, so the binary is copied with its debug sections stripped (symbols stay).
Every process started is stopped by its pid.
"""
import argparse
import glob
import os
import random
import re
import shutil
import socket
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402  (GSLB configuration and the zone generator's conventions)


def wire(name):
    return b"".join(bytes([len(label)]) + label.encode() for label in name.strip(".").split(".")) + b"\0"


def packet(qid, name, qtype, ecs=None):
    """A query: one question, EDNS (1232) with an ECS option for `ecs` (4 octets, /24) when given."""
    p = struct.pack("!HHHHHH", qid, 0, 1, 0, 0, 1) + wire(name) + struct.pack("!HH", qtype, 1)
    opt = b""
    if ecs is not None:
        data = struct.pack("!HBB", 1, 24, 0) + bytes(ecs[:3])
        opt = struct.pack("!HH", 8, len(data)) + data
    return p + b"\0" + struct.pack("!HHIH", 41, 1232, 0, len(opt)) + opt


TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "MX": 15, "TXT": 16, "AAAA": 28}


def static_queries(work, n):
    mix = f"{work}/zones-mix"
    os.makedirs(mix, exist_ok=True)
    subprocess.run([sys.executable, f"{HERE}/gen_zone.py", "mix", mix], check=True)
    out = []
    for i, line in enumerate(open(f"{mix}/queries-udp.txt")):
        if i >= n:
            break
        name, qtype = line.split()
        out.append(packet(i & 0xFFFF, name, TYPES[qtype]))
    os.remove(f"{mix}/queries-udp.txt")
    return mix, out


def ecs_queries(n, fixed):
    rnd = random.Random(11)
    out = []
    for i in range(n):
        a = [81, 2, 69] if fixed else [rnd.randrange(1, 224), rnd.randrange(256), rnd.randrange(256)]
        out.append(packet(i & 0xFFFF, "www.gslb.test", 1, a + [0]))
    return out


def send_all(port, packets):
    """Sends each query and waits for its answer (bounded: 2 s each); returns how many were answered."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    answered = 0
    try:
        for p in packets:
            s.sendto(p, ("127.0.0.1", port))
            try:
                s.recv(4096)
                answered += 1
            except socket.timeout:
                pass
    finally:
        s.close()
    return answered


def thread_totals(prefix):
    """(file, total instructions) per thread dump, largest first."""
    rows = []
    for f in glob.glob(prefix + "*"):
        text = open(f, errors="replace").read()
        counts = [int(v) for v in re.findall(r"^(?:summary|totals):\s+(\d+)", text, re.M)]
        if counts:
            rows.append((f, max(counts)))
    return sorted(rows, key=lambda r: -r[1])


def run(work, binary, name, config, packets):
    d = f"{work}/{name}"
    os.makedirs(d, exist_ok=True)
    for f in glob.glob(f"{d}/cg.out*"):
        os.remove(f)
    port = bench.free_port()
    open(f"{d}/lodestar.yaml", "w").write(config(port))
    log = open(f"{d}/log", "w")
    argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--separate-threads=yes",
            f"--callgrind-out-file={d}/cg.out", binary, "serve", "--config", f"{d}/lodestar.yaml"]
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=d)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if send_all(port, [packets[0]]) == 1:
                break
            time.sleep(0.5)
        else:
            raise SystemExit(f"{name}: lodestar did not answer under valgrind (see {d}/log)")
        subprocess.run(["callgrind_control", "-i", "on", str(proc.pid)], check=True, capture_output=True)
        answered = send_all(port, packets)
        subprocess.run(["callgrind_control", "-i", "off", str(proc.pid)], check=True, capture_output=True)
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    totals = thread_totals(f"{d}/cg.out")
    if not totals:
        raise SystemExit(f"{name}: no callgrind output in {d}")
    f, top = totals[0]
    return {"queries": len(packets), "answered": answered, "instructions": top, "per_query": top / len(packets),
            "file": f}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("work")
    ap.add_argument("lodestar")
    ap.add_argument("--queries", type=int, default=20000)
    ap.add_argument("--only", default="static,lb-ecs,lb-ecs-cached")
    args = ap.parse_args()
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    binary = f"{work}/lodestar-stripped"
    shutil.copy(args.lodestar, binary)
    subprocess.run(["strip", "--strip-debug", binary], check=True)
    db = os.path.abspath(f"{HERE}/../geo/sample.mmdb")
    regions = "".join(f"  {n}: {{ coordinates: [{la}, {lo}] }}\n" for n, _, la, lo in bench.GSLB_REGIONS)
    pools = "".join(f"  {n}: {{ region: {n}, endpoints: [ {{ address: {a} }} ] }}\n" for n, a, _, _ in bench.GSLB_REGIONS)
    rules = "".join(f"        {c}: [{r}]\n" for c, r in bench.GSLB_MAP.items())
    gslb_zones = f"{work}/zones-gslb"
    os.makedirs(gslb_zones, exist_ok=True)
    open(f"{gslb_zones}/gslb.test.zone", "w").write(bench.GSLB_SOA + "www 60 IN A 192.0.2.10\n")

    def gslb(cache):
        return lambda port: (
            f"server:\n  listen: [\"127.0.0.1:{port}\"]\n  zones: {gslb_zones}\n  udp-workers: 1\n  answer-cache: {cache}\n"
            + bench.LIMIT_OFF +
            f"geo:\n  database: {db}\nregions:\n{regions}pools:\n{pools}names:\n  www.gslb.test:\n"
            f"    policy: [health, geo, failover]\n    pools: [na, eu, ap]\n    ttl: [30, 60]\n"
            f"    geo:\n      continent:\n{rules}")

    results = {}
    for name in args.only.split(","):
        if name in ("static", "static-rrl"):
            mix, packets = static_queries(work, args.queries)
            limit = bench.LIMIT_ON_UNTRIGGERED if name == "static-rrl" else bench.LIMIT_OFF
            config = lambda port: f"server:\n  listen: [\"127.0.0.1:{port}\"]\n  zones: {mix}\n  udp-workers: 1\n" + limit
        elif name == "lb-ecs":
            packets, config = ecs_queries(args.queries, fixed=False), gslb(0)
        elif name == "lb-ecs-cached":
            packets, config = ecs_queries(args.queries, fixed=True), gslb(4096)
        else:
            raise SystemExit(f"unknown workload {name}")
        r = run(work, binary, name, config, packets)
        results[name] = r
        print(f"{name:14} {r['per_query']:8.0f} instructions per query  ({r['instructions']:,} over "
              f"{r['queries']:,} queries, {r['answered']:,} answered)", flush=True)


if __name__ == "__main__":
    main()
