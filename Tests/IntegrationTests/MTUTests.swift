import Foundation
import OriginSupport
import Testing

/// IPv4 responses carry DF and are never fragmented (RFC 9715 §3.1); one larger than the interface
/// MTU is answered again within 512 octets with TC, so the client retries over TCP. Run in a network
/// namespace of the test's own whose loopback has an MTU of 1000 (root only: `ip netns`).
@Suite("UDP responses and the interface MTU", .serialized, .enabled(if: getuid() == 0, "needs root for ip netns"))
struct MTUTests {
    /// A namespace with `lo` up at MTU 1000, deleted by `remove()`.
    struct Namespace {
        let name = "lodestar-mtu-\(getpid())-\(UInt32.random(in: 0..<1_000_000))"

        init() throws {
            for args in [["netns", "add", name], ["-n", name, "link", "set", "lo", "mtu", "1000", "up"]] {
                let r = try Command.run("/usr/bin/env", ["ip"] + args, timeout: 10)
                guard r.status == 0 else {
                    throw TestFailure("ip \(args.joined(separator: " ")): \(r.output)\(r.error)")
                }
            }
        }

        func dig(_ port: Int, _ args: [String]) throws -> DigResult {
            let r = try Command.run(
                "/usr/bin/env",
                [
                    "ip", "netns", "exec", name, "dig", "@127.0.0.1", "-p", "\(port)", "+norec",
                    "+tries=1", "+time=2"
                ] + args, timeout: 15)
            return DigResult(r.output)
        }

        func remove() { _ = try? Command.run("/usr/bin/env", ["ip", "netns", "del", name], timeout: 10) }
    }

    /// One TXT record of `strings` × 250 octets.
    static func txt(_ owner: String, _ strings: Int, _ fill: Character) -> String {
        owner + " IN TXT "
            + (0..<strings).map { _ in "\"" + String(repeating: fill, count: 250) + "\"" }.joined(separator: " ")
    }

    @Test(
        "over an MTU of 1000: a 1,090-octet response comes back as TC (no fragments), 840 octets whole, TCP whole",
        .timeLimit(.minutes(1)))
    func tooBigForTheInterface() throws {
        let dir = try Paths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/zones", withIntermediateDirectories: true)
        try """
        $ORIGIN mtu.test.
        $TTL 300
        @ IN SOA ns1 hostmaster 1 3600 600 86400 60
        @ IN NS ns1
        ns1 IN A 192.0.2.53
        \(Self.txt("big", 4, "b"))
        \(Self.txt("mid", 3, "m"))

        """.write(toFile: dir + "/zones/mtu.test.zone", atomically: true, encoding: .utf8)
        let ns = try Namespace()
        defer { ns.remove() }
        let port = 5300
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.currentDirectoryURL = URL(fileURLWithPath: dir)  // not the repository's lodestar.yaml
        server.arguments = [
            "ip", "netns", "exec", ns.name, Paths.binary, "serve", "--zones", dir + "/zones",
            "--listen", "127.0.0.1:\(port)"
        ]
        let log = dir + "/lodestar.log"
        FileManager.default.createFile(atPath: log, contents: nil)
        server.standardOutput = FileHandle(forWritingAtPath: log)
        server.standardError = FileHandle(forWritingAtPath: log)
        try server.run()  // ip execs the binary: the pid is lodestar's
        defer {
            kill(server.processIdentifier, SIGTERM)
            server.waitUntilExit()
        }
        let up = Poll.seconds(limit: 15, every: 0.1) { (try? ns.dig(port, ["mtu.test", "SOA"]))?.status == "NOERROR" }
        let text = { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        #expect(up != nil, "lodestar answered in the namespace: \(text())")

        // 4 × 251 octets of TXT: ~1,090 octets of DNS, more than the interface carries unfragmented.
        let big = try ns.dig(port, ["big.mtu.test", "TXT", "+bufsize=1232", "+ignore"])
        #expect(big.status == "NOERROR" && big.flags.contains("tc") && big.answer.isEmpty, "\(big)")
        #expect(big.hasOPT, "the TC response keeps its OPT: \(big)")
        let whole = try ns.dig(port, ["big.mtu.test", "TXT", "+tcp"])
        #expect(whole.status == "NOERROR" && whole.answer.count == 1 && !whole.flags.contains("tc"), "\(whole)")
        // 3 × 251: ~840 octets fit the interface: sent whole over UDP.
        let mid = try ns.dig(port, ["mid.mtu.test", "TXT", "+bufsize=1232", "+ignore"])
        #expect(mid.status == "NOERROR" && mid.answer.count == 1 && !mid.flags.contains("tc"), "\(mid)")
        // Without EDNS the 512-octet limit truncates as always.
        let classic = try ns.dig(port, ["big.mtu.test", "TXT", "+noedns", "+ignore"])
        #expect(classic.flags.contains("tc"), "\(classic)")
        #expect(!text().contains("still larger"), "\(text())")
    }
}
