#!/usr/bin/env python3
"""Paired runs of the gslb-ecs-many workload: lodestar and gdnsd both up, each under the same CPU
cap, and bench/ecsflood runs alternating between them, so that the machine's drift hits both alike.

usage: paired.py WORK LODESTAR [--rounds 5] [--seconds 6] [--subnets 100000]

Prints each run and the medians of qps per server core, user and kernel µs per query, and their
ratio. Needs what bench.py needs for the GSLB workloads (gdnsd, GeoLite2-City from PyPI, a C compiler).
"""
import argparse
import os
import statistics
import time

import bench


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("work")
    ap.add_argument("lodestar")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=6)
    ap.add_argument("--subnets", type=int, default=bench.GSLB_SUBNETS)
    ap.add_argument("--quota", type=float, default=0.5)
    args = ap.parse_args()
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    db = bench.geolite2_path()
    flood = bench.build_ecsflood(work, os.path.dirname(os.path.abspath(__file__)))
    if not db or not flood:
        raise SystemExit("needs GeoLite2-City (pip install maxminddb-geolite2) and a C compiler")
    old = bench.equal_socket_buffers(4 * 1024 * 1024)
    servers = {}
    try:
        for name in ("lodestar", "gdnsd"):
            port = bench.free_port()
            server = (bench.LodestarGSLB(f"{work}/lodestar-gslb", port, os.path.abspath(args.lodestar), db)
                      if name == "lodestar" else bench.GdnsdGSLB(f"{work}/gdnsd-gslb", port, db))
            server.start(None)
            if server.wait_answer("www.gslb.test", 90) is None:
                raise SystemExit(f"{name} did not answer")
            quota = bench.CpuQuota(name, args.quota)
            quota.add(server.proc.pid)
            servers[name] = (server, quota, port)
        results = {name: [] for name in servers}
        for i in range(args.rounds):
            for name, (server, _, port) in servers.items():
                (u0, k0), t0 = bench.cpu_split(server.proc.pid), time.monotonic()
                r = bench.ecsflood(flood, port, args.seconds, args.subnets, i + 1)
                (u1, k1), t1 = bench.cpu_split(server.proc.pid), time.monotonic()
                n = r["qps"] * (t1 - t0)
                cpu = (u1 - u0 + k1 - k0) / (t1 - t0)
                row = (r["qps"] / cpu, (u1 - u0) / n * 1e6, (k1 - k0) / n * 1e6, r["lost"])
                results[name].append(row)
                print(f"{name} round {i + 1}: {row[0]:,.0f} qps/core, user {row[1]:.2f} µs/q, "
                      f"kernel {row[2]:.2f} µs/q, lost {row[3]:.0f}", flush=True)
        med = {name: [statistics.median(r[k] for r in rows) for k in range(3)] for name, rows in results.items()}
        for name, (qps, user, kernel) in med.items():
            print(f"median {name}: {qps:,.0f} qps/core, user {user:.2f} µs/q, kernel {kernel:.2f} µs/q")
        print(f"ratio lodestar/gdnsd: {med['lodestar'][0] / med['gdnsd'][0]:.3f}")
    finally:
        for server, quota, _ in servers.values():
            server.stop()
            quota.close()
        if old:
            open(bench.RMEM_DEFAULT, "w").write(old)


if __name__ == "__main__":
    main()
