#!/usr/bin/env python3
"""Generates the benchmark zones and query files (deterministic: seeded).

gen_zone.py mix DIR      bench.test zone with 10,000 hosts + queries-udp.txt (~10% NXDOMAIN)
gen_zone.py big DIR N    big.test zone with N A records (+ last name in DIR/big-last.txt)
"""
import random
import sys

SOA = "@ 3600 IN SOA ns1 hostmaster 1 7200 3600 1209600 300\n@ 3600 IN NS ns1\n@ 3600 IN NS ns2\n"


def mix(out):
    rnd = random.Random(7)
    hosts = 10000
    with open(f"{out}/bench.test.zone", "w") as z:
        z.write("$ORIGIN bench.test.\n$TTL 300\n" + SOA)
        z.write("ns1 IN A 192.0.2.1\nns2 IN A 192.0.2.2\n@ IN MX 10 mail\nmail IN A 192.0.2.3\n")
        z.write('@ IN TXT "v=spf1 mx -all"\n')
        for i in range(hosts):
            z.write(f"h{i} IN A 10.{i // 65536}.{(i // 256) % 256}.{i % 256}\n")
            if i % 3 == 0:
                z.write(f"h{i} IN AAAA 2001:db8::{i:x}\n")
            if i % 5 == 0:
                z.write(f"w{i} IN CNAME h{i}\n")
            if i % 10 == 0:
                z.write(f'h{i} IN TXT "host {i} text record for the benchmark"\n')
    with open(f"{out}/queries-udp.txt", "w") as q:
        for _ in range(200000):
            r = rnd.random()
            i = rnd.randrange(hosts)
            if r < 0.45:
                q.write(f"h{i}.bench.test A\n")
            elif r < 0.60:
                q.write(f"h{i - i % 3}.bench.test AAAA\n")
            elif r < 0.70:
                q.write(f"w{i - i % 5}.bench.test A\n")
            elif r < 0.75:
                q.write(f"h{i - i % 10}.bench.test TXT\n")
            elif r < 0.80:
                q.write("bench.test MX\n")
            elif r < 0.84:
                q.write("bench.test NS\n")
            elif r < 0.87:
                q.write(f"h{i}.bench.test MX\n")  # NODATA
            elif r < 0.90:
                q.write("bench.test SOA\n")
            else:
                q.write(f"nx{i}.bench.test A\n")  # NXDOMAIN: 10%


def big(out, n):
    with open(f"{out}/big.test.zone", "w") as z:
        z.write("$ORIGIN big.test.\n$TTL 300\n" + SOA)
        z.write("ns1 IN A 192.0.2.1\nns2 IN A 192.0.2.2\n")
        lines = []
        for i in range(n):
            lines.append(f"r{i} IN A 10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}\n")
            if len(lines) == 10000:
                z.write("".join(lines))
                lines = []
        z.write("".join(lines))
    with open(f"{out}/big-last.txt", "w") as f:
        f.write(f"r{n - 1}.big.test\n")


if __name__ == "__main__":
    if sys.argv[1] == "mix":
        mix(sys.argv[2])
    else:
        big(sys.argv[2], int(sys.argv[3]))
