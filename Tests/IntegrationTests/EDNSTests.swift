import Foundation
import Testing

@Suite("EDNS, ECS, NSID and truncation against the real binary")
struct EDNSTests {
    @Test("OPT is echoed with our payload; DO echoed; absent without EDNS", .timeLimit(.minutes(1)))
    func optEcho() throws {
        let server = try LodestarProcess()
        defer { server.stop() }
        let r = try server.dig("www.example.com", "A")
        #expect(r.hasOPT)
        #expect(r.options.contains { $0.contains("udp: 1232") }, "\(r)")
        let d = try server.dig("+dnssec", "www.example.com", "A")
        #expect(d.options.contains { $0.contains("flags: do") }, "\(d)")
        let n = try server.dig("+noedns", "www.example.com", "A")
        #expect(!n.hasOPT)
        // Error replies to EDNS queries carry OPT too.
        let refused = try server.dig("www.example.org", "A")
        #expect(refused.status == "REFUSED" && refused.hasOPT, "\(refused)")
        let notimp = try server.dig("+opcode=status", "www.example.com", "A")
        #expect(notimp.status == "NOTIMP" && notimp.hasOPT, "\(notimp)")
        let badvers = try server.dig("+edns=1", "+noednsnegotiation", "www.example.com", "A")
        #expect(badvers.status == "BADVERS" && badvers.hasOPT, "\(badvers)")
    }

    @Test("NSID from the config; ECS echoed with scope 0", .timeLimit(.minutes(1)))
    func nsidAndECS() throws {
        let dir = try Paths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "server:\n  nsid: pop-test-1\n".write(toFile: dir + "/lodestar.yaml", atomically: true, encoding: .utf8)
        let server = try LodestarProcess(config: dir + "/lodestar.yaml")
        defer { server.stop() }
        let r = try server.dig("+nsid", "www.example.com", "A")
        #expect(r.options.contains { $0.contains("NSID:") && $0.contains("pop-test-1") }, "\(r)")
        let e = try server.dig("+subnet=198.51.100.0/24", "www.example.com", "A")
        #expect(e.options.contains { $0.contains("CLIENT-SUBNET: 198.51.100.0/24/0") }, "\(e)")
        let e6 = try server.dig("+subnet=2001:db8:1::/48", "www.example.com", "A")
        #expect(e6.options.contains { $0.contains("CLIENT-SUBNET: 2001:db8:1::/48/0") }, "\(e6)")
    }

    @Test(
        "Malformed ECS and a non-zero query scope are FORMERR", .timeLimit(.minutes(1)),
        arguments: [
            [0, 1, 24, 0, 192, 0, 2, 7],  // address longer than the prefix needs
            [0, 1, 23, 0, 192, 0, 3],  // bits past the prefix set
            [0, 1, 24, 24, 192, 0, 2],  // scope in a query
            [0, 3, 24, 0, 192, 0, 2],  // unknown family
            [0, 1, 33, 0, 192, 0, 2, 1, 0],  // prefix past 32
            [0, 1]  // too short
        ] as [[UInt8]])
    func malformedECS(option: [UInt8]) throws {
        let server = try LodestarProcess()
        defer { server.stop() }
        let q = RawDNS.query(id: 0x4242, name: "www.example.com", type: 1, opt: RawDNS.opt(options: [(8, option)]))
        let reply = try #require(RawDNS.udp(q, port: server.port))
        #expect(RawDNS.id(reply) == 0x4242)
        #expect(RawDNS.rcode(reply) == 1, "FORMERR expected for \(option)")
        #expect(reply[11] == 1, "the FORMERR carries OPT")
    }

    @Test("Answers that do not fit are truncated to the question with TC; TCP gets them whole", .timeLimit(.minutes(1)))
    func truncation() throws {
        let server = try LodestarProcess()
        defer { server.stop() }
        for args in [["+noedns"], ["+bufsize=1232"], ["+bufsize=4096"]] {
            let r = try server.dig(args + ["+ignore", "bigtxt.example.com", "TXT"])
            #expect(r.flags.contains("tc"), "\(args) \(r)")
            #expect(r.answer.isEmpty, "whole RRsets only: \(r)")
        }
        let tcp = try server.dig("+tcp", "bigtxt.example.com", "TXT")
        #expect(tcp.answer.count == 20 && !tcp.flags.contains("tc"), "\(tcp)")
        // RFC 9471: in-bailiwick glue that does not fit sets TC, keeping the NS set and the glue that fit.
        let glue = try server.dig("+noedns", "+ignore", "a.big.example.com", "A")
        #expect(glue.flags.contains("tc"), "\(glue)")
        #expect(glue.authority.count == 4, "\(glue)")
        #expect(!glue.additional.isEmpty && glue.additional.count < 16, "\(glue)")
        let glueEDNS = try server.dig("a.big.example.com", "A")
        #expect(!glueEDNS.flags.contains("tc") && glueEDNS.additional.count == 16, "\(glueEDNS)")
    }
}
