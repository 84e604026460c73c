#!/usr/bin/env python3
"""Differential comparison of lodestar with knot on the same zones.

Sends the same queries (UDP and TCP, with and without EDNS) to both servers on loopback and
compares rcode, flags and every section as sets of records (names case-insensitively).
Exits 1 and prints each difference when they disagree.

usage: knot_diff.py LODESTAR_PORT KNOT_PORT [--verbose]
"""
import itertools
import sys

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rdataclass
import dns.rdatatype
import dns.rcode

NAMES = [
    "example.com.", "www.example.com.", "WwW.ExAmPlE.CoM.", "alias.example.com.", "chain1.example.com.",
    "loop1.example.com.", "dangling.example.com.", "outside.example.com.", "nx.example.com.",
    "deep.nx.example.com.", "a.wild.example.com.", "b.c.wild.example.com.", "wild.example.com.",
    "*.wild.example.com.", "x.wc.example.com.", "y.ent.example.com.", "ent.example.com.",
    "x.y.ent.example.com.", "z.x.y.ent.example.com.", "_sip._tcp.example.com.", "_tcp.example.com.",
    "sub.example.com.", "foo.sub.example.com.", "ns1.sub.example.com.", "big.example.com.",
    "a.big.example.com.", "child.example.com.", "www.child.example.com.", "nx.child.example.com.",
    "ns1.child.example.com.", "dn.example.com.", "x.dn.example.com.", "a.b.dn.example.com.",
    "www.dnin.example.com.", "nx.dnin.example.com.", "x.dlong.example.com.",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.dlong.example.com.",
    "bigtxt.example.com.", "unknown.example.com.", "caa.example.com.", "esc\\.aped.example.com.",
    "inc.example.com.", "host.inc.example.com.", "after.example.com.", "mail.example.com.",
    "ns1.example.com.", "example.org.", "www.example.org.", "com.", ".", "sipserver.example.com.",
]
TYPES = ["A", "AAAA", "NS", "SOA", "MX", "TXT", "CNAME", "DNAME", "SRV", "DS", "CAA", "ANY", "PTR",
         "TYPE65280", "RRSIG", "NSEC"]


def normalize_section(section):
    out = set()
    for rrset in section:
        if rrset.rdtype == dns.rdatatype.OPT:
            continue
        for rd in rrset:
            out.add((rrset.name.to_text().lower(), dns.rdataclass.to_text(rrset.rdclass),
                     dns.rdatatype.to_text(rrset.rdtype), rrset.ttl, rd.to_text().lower()))
    return out


def summary(msg):
    if msg is None:
        return None
    flags = dns.flags.to_text(msg.flags).split()
    return {
        "rcode": dns.rcode.to_text(msg.rcode()),
        "flags": sorted(f for f in flags if f in ("QR", "AA", "TC", "RD", "RA", "CD")),
        "question": [(q.name.to_text().lower(), q.rdtype, q.rdclass) for q in msg.question],
        "answer": normalize_section(msg.answer),
        "authority": normalize_section(msg.authority),
        "additional": normalize_section(msg.additional),
        "edns": msg.edns,
    }


def ask(port, q, tcp):
    try:
        if tcp:
            return dns.query.tcp(q, "127.0.0.1", port=port, timeout=2)
        return dns.query.udp(q, "127.0.0.1", port=port, timeout=2, ignore_trailing=True)
    except dns.exception.Timeout:
        return None


def main():
    ours, theirs = int(sys.argv[1]), int(sys.argv[2])
    verbose = "--verbose" in sys.argv
    cases = []
    for name, rdtype in itertools.product(NAMES, TYPES):
        for edns, tcp in ((0, False), (-1, False), (0, True)):
            cases.append((name, rdtype, "IN", edns, tcp, False))
    # DNSSEC OK (DS in referrals), classes, and a few more over UDP.
    for name in ("sub.example.com.", "foo.sub.example.com.", "child.example.com.", "www.child.example.com."):
        cases.append((name, "A", "IN", 0, False, True))
        cases.append((name, "DS", "IN", 0, False, True))
    for name, rdclass in (("version.bind.", "CH"), ("id.server.", "CH"), ("www.example.com.", "CH"),
                          ("www.example.com.", "ANY"), ("www.example.com.", "HS"), ("example.com.", "CH")):
        cases.append((name, "TXT", rdclass, 0, False, False))
    differences = 0
    for name, rdtype, rdclass, edns, tcp, do in cases:
        q = dns.message.make_query(name, rdtype, rdclass, use_edns=edns, want_dnssec=do)
        q.flags &= ~dns.flags.RD
        a, b = summary(ask(ours, q, tcp)), summary(ask(theirs, q, tcp))
        if rdclass == "CH" and a and b:
            # Identity and version texts differ by design; the rcode and flags must not.
            a["answer"] = b["answer"] = len(a["answer"]), len(b["answer"])
        if a != b:
            differences += 1
            print(f"DIFF {name} {rdtype} {rdclass} edns={edns} tcp={tcp} do={do}")
            if a is None or b is None:
                print(f"  lodestar: {a}\n  knot:     {b}")
                continue
            for key in a:
                if a[key] != b[key]:
                    if isinstance(a[key], set):
                        print(f"  {key}: lodestar only {sorted(a[key] - b[key])}")
                        print(f"  {key}: knot only     {sorted(b[key] - a[key])}")
                    else:
                        print(f"  {key}: lodestar {a[key]}  knot {b[key]}")
        elif verbose:
            print(f"same {name} {rdtype} {rdclass} edns={edns} tcp={tcp}")
    print(f"{len(cases)} queries, {differences} differences")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
