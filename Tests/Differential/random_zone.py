#!/usr/bin/env python3
"""Seeded random zones and queries for the differential comparison with knot.

random_zone.py SEED DIR   writes DIR/rnd.test.zone (a valid zone: delegations with glue, CNAME
                          chains and loops, wildcards, DNAMEs, empty non-terminals, MX/SRV/NS
                          targets in and out of the zone) and DIR/queries.txt ("name type" lines).
"""
import random
import sys

TYPES = ["A", "AAAA", "TXT", "MX", "SRV", "NS", "CNAME", "DNAME", "SOA", "ANY", "DS", "PTR", "CAA"]


def main():
    seed, out = int(sys.argv[1]), sys.argv[2]
    rnd = random.Random(seed)
    labels = ["a", "b", "c", "www", "mail", "x", "y", "z", "deep", "svc", "_tcp", "_sip", "ns", "w1"]
    names = set()
    cuts, dnames, cnames = set(), set(), set()
    lines = ["$ORIGIN rnd.test.", "$TTL 300",
             "@ IN SOA ns1 hostmaster 1 3600 600 86400 120", "@ IN NS ns1", "@ IN NS ns2.other.test.",
             "ns1 IN A 192.0.2.1", "@ IN MX 10 mail", "mail IN A 192.0.2.25"]
    taken = {"ns1", "mail", ""}

    def fresh(depth=None):
        for _ in range(100):
            d = depth or rnd.randint(1, 3)
            n = ".".join(rnd.choice(labels) for _ in range(d))
            # Nothing below a cut or a DNAME, nothing beside a CNAME: keep the zone valid.
            parts = n.split(".")
            ancestors = {".".join(parts[i:]) for i in range(1, len(parts))}
            if n in taken or ancestors & (cuts | dnames | cnames) or n in cuts | dnames | cnames:
                continue
            # A new name never becomes the ancestor of an existing one (a DNAME or cut above data
            # would make the zone invalid).
            if any(t.endswith("." + n) for t in taken | cuts | dnames | cnames):
                continue
            return n
        return None

    if rnd.random() < 0.3:
        # A wildcard at the apex answers for every missing name one label down.
        lines.append(f"*.rnd.test. IN TXT \"apex wildcard\"")
        taken.add("*")
    # Loops (RFC 2181 §10.1.1): the answer stops at the first repeat and no RR is written twice.
    for _ in range(rnd.randint(1, 3)):
        loop = rnd.random()
        n = fresh()
        if n is None:
            continue
        if loop < 0.25:
            lines.append(f"{n} IN CNAME {n}")  # pointing at itself
            cnames.add(n)
        elif loop < 0.5:
            m = fresh()
            if m is None or m == n:
                continue
            lines.append(f"{n} IN CNAME {m}")  # two names pointing at each other
            lines.append(f"{m} IN CNAME {n}")
            cnames.update((n, m))
        elif loop < 0.75:
            lines.append(f"*.{n} IN CNAME {rnd.choice(['x', 'star', 'q'])}.{n}")  # a loop through a wildcard
            taken.update(("*." + n, n))
        else:
            lines.append(f"{n} IN DNAME {rnd.choice([n, 'x.' + n, 'rnd.test.'])}" + ("" if "." in n else ""))
            dnames.add(n)
    for _ in range(rnd.randint(25, 45)):
        kind = rnd.random()
        n = fresh()
        if n is None:
            continue
        if kind < 0.35:
            for _ in range(rnd.randint(1, 3)):
                lines.append(f"{n} IN A 192.0.2.{rnd.randint(2, 250)}")
            if rnd.random() < 0.4:
                lines.append(f"{n} IN AAAA 2001:db8::{rnd.randint(1, 9999):x}")
            if rnd.random() < 0.3:
                lines.append(f'{n} IN TXT "t{rnd.randint(0, 99)}"')
            taken.add(n)
        elif kind < 0.5:
            target = rnd.choice(sorted(taken - {""}) + ["nowhere", "www.other.test.", n])
            lines.append(f"{n} IN CNAME {target}")
            cnames.add(n)
        elif kind < 0.6:
            star = "*." + n
            lines.append(f"{star} IN A 192.0.2.{rnd.randint(2, 250)}")
            if rnd.random() < 0.5:
                lines.append(f"{star} IN MX 5 mail")
            taken.add(star)
            taken.add(n)
        elif kind < 0.7:
            lines.append(f"{n} IN NS ns.{n}")
            lines.append(f"ns.{n} IN A 192.0.2.{rnd.randint(2, 250)}")
            if rnd.random() < 0.5:
                lines.append(f"{n} IN NS ns.other.test.")
            if rnd.random() < 0.3:
                lines.append(f"{n} IN DS 1 13 2 {'ab' * 32}")
            cuts.add(n)
        elif kind < 0.77:
            target = rnd.choice(["other.test.", "rnd.test.", "a.rnd.test.", "x.y.rnd.test."])
            lines.append(f"{n} IN DNAME {target}")
            dnames.add(n)
        elif kind < 0.85:
            lines.append(f"{n} IN SRV 0 1 443 {rnd.choice(sorted(taken - {''}) + ['srv.other.test.'])}.rnd.test."
                         .replace(".other.test..rnd.test.", ".other.test."))
            taken.add(n)
        elif kind < 0.9:
            lines.append(f"{n} IN MX {rnd.randint(1, 50)} {rnd.choice(sorted(taken - {''}))}")
            taken.add(n)
        elif kind < 0.94:
            # An RRset too big for 512 octets (and sometimes for 1232): truncation.
            for k in range(rnd.choice([8, 14, 30])):
                lines.append(f'{n.upper()} IN TXT "{k:02d} ' + "x" * 50 + '"')
            taken.add(n)
        elif kind < 0.97 and cuts:
            # Sibling glue, a CNAME into a delegation, an MX target below a cut.
            cut = rnd.choice(sorted(cuts))
            pick = rnd.random()
            if pick < 0.34:
                lines.append(f"{n} IN NS ns.{cut}")
                cuts.add(n)
            elif pick < 0.67:
                lines.append(f"{n} IN CNAME host.{cut}")
                cnames.add(n)
            else:
                lines.append(f"{n} IN MX 1 ns.{cut}")
                taken.add(n)
        else:
            lines.append(f"{n} IN NS ns1")
            lines.append(f"{n} IN NS ns.other.test.")
            cuts.add(n)
    zone = "\n".join(lines) + "\n"
    open(f"{out}/rnd.test.zone", "w").write(zone)

    owners = {l.split()[0] for l in lines[2:] if not l.startswith("$")}
    pool = sorted(owners | {"nx", "nx.www", "q.deep", "a.b.c.d"})
    with open(f"{out}/queries.txt", "w") as q:
        for _ in range(300):
            o = rnd.choice(pool)
            if rnd.random() < 0.3:
                o = rnd.choice(labels) + "." + o
            o = o.replace("*", rnd.choice(["star", "q"]))
            name = "rnd.test." if o == "@" else (o if o.endswith(".") else f"{o}.rnd.test.")
            if rnd.random() < 0.2:
                name = "".join(c.upper() if rnd.random() < 0.5 else c for c in name)
            q.write(f"{name} {rnd.choice(TYPES)}\n")


if __name__ == "__main__":
    main()
