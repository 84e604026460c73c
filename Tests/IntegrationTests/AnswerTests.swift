import DNSWire
import Testing

/// One dig query and the exact response expected of it.
struct AnswerCase: CustomStringConvertible, Sendable {
    var args: [String]
    var status = "NOERROR"
    var flags: Set<String> = ["qr", "aa"]
    var answer: [String] = []
    var authority: [String] = []
    var additional: [String]? = []
    var description: String { args.joined(separator: " ") }
}

let soa = "example.com. 300 IN SOA ns1.example.com. hostmaster.example.com. 2026112301 7200 3600 1209600 300"

/// Every bullet of the answer rules (RFC 1034 §4.3.2, RFC 2181, RFC 4592, RFC 6672, RFC 8482), with exact sections.
let answerCases: [AnswerCase] = [
    // Authoritative answer with AA.
    AnswerCase(
        args: ["www.example.com", "A"],
        answer: [
            "www.example.com. 3600 IN A 192.0.2.10", "www.example.com. 3600 IN A 192.0.2.11"
        ]),
    // The question echoed byte for byte (0x20): the owner is a pointer to it.
    AnswerCase(args: ["WwW.ExAmPlE.cOm", "AAAA"], answer: ["WwW.ExAmPlE.cOm. 3600 IN AAAA 2001:db8::10"]),
    // NXDOMAIN and NODATA carry the SOA with TTL min(SOA TTL, MINIMUM) (RFC 2308 §3).
    AnswerCase(args: ["nx.example.com", "A"], status: "NXDOMAIN", authority: [soa]),
    AnswerCase(args: ["deep.nx.example.com", "A"], status: "NXDOMAIN", authority: [soa]),
    AnswerCase(args: ["www.example.com", "TXT"], authority: [soa]),
    // Empty non-terminals are NODATA, not NXDOMAIN.
    AnswerCase(args: ["y.ent.example.com", "A"], authority: [soa]),
    AnswerCase(args: ["ent.example.com", "A"], authority: [soa]),
    // In-zone CNAME chains are followed.
    AnswerCase(
        args: ["chain1.example.com", "A"],
        answer: [
            "chain1.example.com. 3600 IN CNAME chain2.example.com.",
            "chain2.example.com. 3600 IN CNAME alias.example.com.",
            "alias.example.com. 3600 IN CNAME www.example.com.", "www.example.com. 3600 IN A 192.0.2.10",
            "www.example.com. 3600 IN A 192.0.2.11"
        ]),
    // A loop ends.
    AnswerCase(
        args: ["loop1.example.com", "A"],
        answer: [
            "loop1.example.com. 3600 IN CNAME loop2.example.com.", "loop2.example.com. 3600 IN CNAME loop1.example.com."
        ]),
    // The rcode is the last name's (RFC 6604).
    AnswerCase(
        args: ["dangling.example.com", "A"], status: "NXDOMAIN",
        answer: ["dangling.example.com. 3600 IN CNAME nothere.example.com."], authority: [soa]),
    // Out-of-zone targets are left to the resolver.
    AnswerCase(args: ["outside.example.com", "A"], answer: ["outside.example.com. 3600 IN CNAME www.example.org."]),
    // The CNAME itself for qtype CNAME.
    AnswerCase(args: ["alias.example.com", "CNAME"], answer: ["alias.example.com. 3600 IN CNAME www.example.com."]),
    // Referral: no AA, NS in authority, in-bailiwick glue in additional.
    AnswerCase(
        args: ["foo.sub.example.com", "A"], flags: ["qr"],
        authority: [
            "sub.example.com. 3600 IN NS ns1.sub.example.com.", "sub.example.com. 3600 IN NS ns.example.org."
        ],
        additional: ["ns1.sub.example.com. 3600 IN A 192.0.2.150", "ns1.sub.example.com. 3600 IN AAAA 2001:db8::150"]),
    AnswerCase(
        args: ["sub.example.com", "NS"], flags: ["qr"],
        authority: [
            "sub.example.com. 3600 IN NS ns1.sub.example.com.", "sub.example.com. 3600 IN NS ns.example.org."
        ],
        additional: ["ns1.sub.example.com. 3600 IN A 192.0.2.150", "ns1.sub.example.com. 3600 IN AAAA 2001:db8::150"]),
    // Glue is not answered authoritatively: below the cut is a referral.
    AnswerCase(
        args: ["ns1.sub.example.com", "A"], flags: ["qr"],
        authority: [
            "sub.example.com. 3600 IN NS ns1.sub.example.com.", "sub.example.com. 3600 IN NS ns.example.org."
        ],
        additional: ["ns1.sub.example.com. 3600 IN A 192.0.2.150", "ns1.sub.example.com. 3600 IN AAAA 2001:db8::150"]),
    // A/AAAA of in-zone NS, MX and SRV targets in additional.
    AnswerCase(
        args: ["example.com", "NS"],
        answer: ["example.com. 3600 IN NS ns1.example.com.", "example.com. 3600 IN NS ns2.example.com."],
        additional: [
            "ns1.example.com. 3600 IN A 192.0.2.53", "ns1.example.com. 3600 IN AAAA 2001:db8::53",
            "ns2.example.com. 3600 IN A 198.51.100.53"
        ]),
    AnswerCase(
        args: ["example.com", "MX"],
        answer: ["example.com. 3600 IN MX 10 mail.example.com.", "example.com. 3600 IN MX 20 mail2.example.org."],
        additional: ["mail.example.com. 3600 IN A 192.0.2.25"]),
    AnswerCase(
        args: ["_sip._tcp.example.com", "SRV"],
        answer: ["_sip._tcp.example.com. 3600 IN SRV 0 5 5060 sipserver.example.com."],
        additional: ["sipserver.example.com. 3600 IN A 192.0.2.60"]),
    // Wildcards (RFC 4592): synthesized with the query name as owner; CNAME wildcards followed.
    AnswerCase(args: ["a.wild.example.com", "TXT"], answer: ["a.wild.example.com. 3600 IN TXT \"wildcard\""]),
    AnswerCase(args: ["b.c.wild.example.com", "A"], answer: ["b.c.wild.example.com. 3600 IN A 192.0.2.100"]),
    AnswerCase(args: ["a.wild.example.com", "MX"], authority: [soa]),
    AnswerCase(
        args: ["x.wc.example.com", "A"],
        answer: [
            "x.wc.example.com. 3600 IN CNAME www.example.com.", "www.example.com. 3600 IN A 192.0.2.10",
            "www.example.com. 3600 IN A 192.0.2.11"
        ]),
    // The wildcard does not cover an existing name below its parent (the empty non-terminal y.ent).
    AnswerCase(args: ["z.x.y.ent.example.com", "A"], status: "NXDOMAIN", authority: [soa]),
    // Names outside every zone: REFUSED.
    AnswerCase(args: ["www.example.org", "A"], status: "REFUSED", flags: ["qr"]),
    // DNAME (RFC 6672) with a synthesized CNAME, followed when in the zone.
    AnswerCase(
        args: ["x.dn.example.com", "A"],
        answer: [
            "dn.example.com. 3600 IN DNAME example.org.",
            "x.dn.example.com. 3600 IN CNAME x.example.org."
        ]),
    AnswerCase(
        args: ["www.dnin.example.com", "A"],
        answer: [
            "dnin.example.com. 3600 IN DNAME example.com.", "www.dnin.example.com. 3600 IN CNAME www.example.com.",
            "www.example.com. 3600 IN A 192.0.2.10", "www.example.com. 3600 IN A 192.0.2.11"
        ]),
    AnswerCase(
        args: ["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.dlong.example.com", "A"],
        status: "YXDOMAIN",
        answer: [
            "dlong.example.com. 3600 IN DNAME aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb.ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc.example.org."
        ]),
    // A parent and child zone served together: the child answers for itself, the parent for its DS.
    AnswerCase(args: ["www.child.example.com", "A"], answer: ["www.child.example.com. 300 IN A 192.0.2.171"]),
    AnswerCase(
        args: ["child.example.com", "DS"],
        answer: [
            "child.example.com. 3600 IN DS 12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF01234567 89ABCDEF"
        ]),
    // ANY answered minimally (RFC 8482 §4.1): one RRset.
    AnswerCase(
        args: ["www.example.com", "ANY"],
        answer: [
            "www.example.com. 3600 IN A 192.0.2.10", "www.example.com. 3600 IN A 192.0.2.11"
        ]),
    // Unknown types in RFC 3597 form; escapes in owner names.
    AnswerCase(
        args: ["unknown.example.com", "TYPE65280"], answer: ["unknown.example.com. 3600 IN TYPE65280 \\# 4 01020304"]),
    AnswerCase(args: ["esc\\.aped.example.com", "A"], answer: ["esc\\.aped.example.com. 3600 IN A 192.0.2.99"]),
    // $INCLUDE with its own origin, and the including file going on after it.
    AnswerCase(args: ["host.inc.example.com", "A"], answer: ["host.inc.example.com. 3600 IN A 192.0.2.211"]),
    AnswerCase(args: ["after.example.com", "A"], answer: ["after.example.com. 3600 IN A 192.0.2.222"]),
    // Class CH: the server's version, not authoritative (as knot).
    AnswerCase(
        args: ["version.bind", "CH", "TXT"], flags: ["qr"],
        answer: ["version.bind. 0 CH TXT \"lodestar \(SoftwareVersion.current)\""]),
    // Class ANY answered from IN data, as knot.
    AnswerCase(
        args: ["www.example.com", "ANY", "A"],
        answer: [
            "www.example.com. 3600 IN A 192.0.2.10", "www.example.com. 3600 IN A 192.0.2.11"
        ]),
    // Opcodes other than QUERY: NOTIMP (the OPT still echoed: see EDNSTests).
    AnswerCase(args: ["+opcode=status", "www.example.com", "A"], status: "NOTIMP", flags: ["qr"]),
    AnswerCase(args: ["+opcode=notify", "www.example.com", "SOA"], status: "NOTIMP", flags: ["qr"]),
    // EDNS version > 0: BADVERS.
    AnswerCase(args: ["+edns=1", "+noednsnegotiation", "www.example.com", "A"], status: "BADVERS", flags: ["qr"])
]

@Suite("Answers from the real binary, queried with dig")
struct AnswerTests {
    @Test("Every answer rule over UDP and over TCP", .timeLimit(.minutes(2)), arguments: ["+notcp", "+tcp"])
    func answers(transport: String) throws {
        let server = try LodestarProcess()
        defer { server.stop() }
        for c in answerCases {
            let r = try server.dig([transport] + c.args)
            #expect(r.status == c.status, "\(c) \(transport)\n\(r)")
            #expect(r.flags == c.flags, "\(c) \(transport)\n\(r)")
            #expect(r.answer == c.answer, "\(c) \(transport)\n\(r)")
            #expect(r.authority == c.authority, "\(c) \(transport)\n\(r)")
            if let additional = c.additional {
                #expect(r.additional == additional, "\(c) \(transport)\n\(r)")
            }
        }
    }
}
