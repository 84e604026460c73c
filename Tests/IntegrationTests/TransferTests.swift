import Foundation
import Testing

@Suite("AXFR and IXFR (RFC 5936, RFC 1995)")
struct TransferTests {
    @Test("AXFR is REFUSED by default", .timeLimit(.minutes(1)))
    func refusedByDefault() throws {
        let server = try LodestarProcess()
        defer { server.stop() }
        let r = try server.dig("example.com", "AXFR")
        #expect(r.raw.contains("Transfer failed"), "\(r)")
        let q = RawDNS.query(id: 77, name: "example.com", type: 252)
        let fd = RawDNS.tcpConnect(port: server.port)
        defer { close(fd) }
        #expect(RawDNS.sendAll(fd, RawDNS.framed(q)))
        let reply = try #require(RawDNS.readFramed(fd))
        #expect(RawDNS.rcode(reply) == 5)
    }

    @Test("AXFR to an allowed client: SOA first and last, every record once; IXFR by serial", .timeLimit(.minutes(1)))
    func allowed() throws {
        let dir = try Paths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "transfer:\n  allow: [\"127.0.0.0/8\"]\n".write(toFile: dir + "/c.yaml", atomically: true, encoding: .utf8)
        let server = try LodestarProcess(config: dir + "/c.yaml")
        defer { server.stop() }
        let r = try server.dig("+onesoa", "example.com", "AXFR")
        let records = r.raw.split(separator: "\n").filter { !$0.hasPrefix(";") && !$0.isEmpty }
            .map { $0.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ") }
        #expect(records.first?.contains("IN SOA") == true, "\(r)")
        // 82 records in the fixture zone (lodestar check counts them), the SOA once with +onesoa.
        #expect(records.count == 82, "\(records.count) records\n\(r)")
        #expect(records.contains("www.example.com. 3600 IN A 192.0.2.11"))
        #expect(records.contains("ns1.sub.example.com. 3600 IN A 192.0.2.150"), "glue travels too")
        let full = try server.dig("example.com", "AXFR")
        let soas = full.raw.split(separator: "\n").filter { $0.contains("\tSOA\t") }
        #expect(soas.count == 2, "SOA first and last")
        // IXFR from the current serial: the SOA alone; from an older one: the whole zone.
        let current = try server.dig("example.com", "IXFR=2026112301")
        #expect(
            current.raw.split(separator: "\n").filter { !$0.hasPrefix(";") && !$0.isEmpty }.count == 1, "\(current)")
        // IXFR over UDP from an allowed client: the SOA alone (RFC 1995 §2), authoritative.
        let udp = try server.dig("+notcp", "example.com", "IXFR=1")
        let udpRecords = udp.raw.split(separator: "\n").filter { !$0.hasPrefix(";") && !$0.isEmpty }
            .map { $0.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ") }
        #expect(udp.raw.contains("(UDP)"), "\(udp)")
        #expect(
            udpRecords == [
                "example.com. 3600 IN SOA ns1.example.com. hostmaster.example.com. 2026112301 7200 3600 1209600 300"
            ],
            "\(udp)")
        let old = try server.dig("example.com", "IXFR=1")
        #expect(old.raw.split(separator: "\n").filter { !$0.hasPrefix(";") && !$0.isEmpty }.count == 83, "\(old)")
    }

    @Test("Building a large transfer does not stall other TCP clients", .timeLimit(.minutes(2)))
    func largeTransferDoesNotStall() throws {
        let dir = try Paths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/zones", withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            atPath: Paths.packageRoot + "/zones/example.com.zone", toPath: dir + "/zones/example.com.zone")
        var text = "$ORIGIN big.test.\n$TTL 300\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n"
        for i in 0..<300_000 { text += "r\(i) A 10.\((i >> 16) & 255).\((i >> 8) & 255).\(i & 255)\n" }
        try text.write(toFile: dir + "/zones/big.test.zone", atomically: true, encoding: .utf8)
        try "transfer:\n  allow: [\"127.0.0.0/8\"]\n".write(toFile: dir + "/c.yaml", atomically: true, encoding: .utf8)
        let server = try LodestarProcess(zones: dir + "/zones", config: dir + "/c.yaml")
        defer { server.stop() }
        let fd = RawDNS.tcpConnect(port: server.port, timeout: 30)
        try #require(fd >= 0)
        defer { close(fd) }
        #expect(RawDNS.sendAll(fd, RawDNS.framed(RawDNS.query(id: 9, name: "big.test", type: 252))))
        usleep(50_000)
        // While the transfer is built and sent, other TCP clients are answered at once.
        var slowest = 0.0
        for _ in 0..<5 {
            let start = Date()
            let r = try server.dig("+tcp", "www.example.com", "A")
            slowest = max(slowest, Date().timeIntervalSince(start))
            #expect(r.status == "NOERROR")
        }
        #expect(slowest < 0.5, "a TCP query waited \(slowest) s behind the transfer")
        // And the transfer completes: the zone's 300,003 records and the closing SOA.
        var records = 0
        while records < 300_004, let m = RawDNS.readFramed(fd) {
            #expect(RawDNS.rcode(m) == 0)
            records += RawDNS.ancount(m)
        }
        #expect(records == 300_004)
    }

    static func rssKiB(_ pid: Int32) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    @Test(
        "Transfers at once are bounded (REFUSED beyond), streamed as the client reads (memory flat while stalled), and linear in the zone",
        .timeLimit(.minutes(2)))
    func boundedAndStreamed() throws {
        let dir = try Paths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/zones", withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            atPath: Paths.packageRoot + "/zones/example.com.zone", toPath: dir + "/zones/example.com.zone")
        for (name, count) in [("big.test", 200_000), ("small.test", 20_000)] {
            var text = "$ORIGIN \(name).\n$TTL 300\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\n"
            for i in 0..<count { text += "r\(i) A 10.\((i >> 16) & 255).\((i >> 8) & 255).\(i & 255)\n" }
            try text.write(toFile: dir + "/zones/\(name).zone", atomically: true, encoding: .utf8)
        }
        try "transfer:\n  allow: [\"127.0.0.0/8\"]\n  concurrency: 2\n".write(
            toFile: dir + "/c.yaml", atomically: true, encoding: .utf8)
        let server = try LodestarProcess(zones: dir + "/zones", config: dir + "/c.yaml")
        defer { server.stop() }
        let before = Self.rssKiB(server.pid)
        // Six transfers asked at once, none read beyond its first message.
        var fds: [Int32] = []
        for i in 0..<6 {
            let fd = RawDNS.tcpConnect(port: server.port, timeout: 10)
            try #require(fd >= 0)
            fds.append(fd)
            #expect(RawDNS.sendAll(fd, RawDNS.framed(RawDNS.query(id: UInt16(i), name: "big.test", type: 252))))
            usleep(100_000)
        }
        var refused = 0
        var streaming = 0
        for fd in fds {
            guard let m = RawDNS.readFramed(fd) else { continue }
            if RawDNS.rcode(m) == 5 { refused += 1 } else if RawDNS.rcode(m) == 0 { streaming += 1 }
        }
        #expect(streaming == 2 && refused == 4, "\(streaming) streaming, \(refused) refused with concurrency 2")
        usleep(500_000)
        let stalled = Self.rssKiB(server.pid)
        #expect(
            stalled - before < 64 * 1024,
            "two stalled transfers of 200,000 records hold \((stalled - before) / 1024) MiB")
        for fd in fds { close(fd) }
        // The slots are free again; a whole transfer takes time in proportion to the zone.
        func transfer(_ zone: String) throws -> (records: Int, seconds: Double) {
            let fd = RawDNS.tcpConnect(port: server.port, timeout: 30)
            try #require(fd >= 0)
            defer { close(fd) }
            let t0 = Date()
            _ = RawDNS.sendAll(fd, RawDNS.framed(RawDNS.query(id: 77, name: zone, type: 252)))
            var records = 0
            let expected = zone == "big.test" ? 200_004 : 20_004
            while records < expected, let m = RawDNS.readFramed(fd) {
                guard RawDNS.rcode(m) == 0 else { break }
                records += RawDNS.ancount(m)
            }
            return (records, Date().timeIntervalSince(t0))
        }
        let small = try transfer("small.test")
        let big = try transfer("big.test")
        #expect(small.records == 20_004 && big.records == 200_004, "\(small) \(big)")
        #expect(
            big.seconds < 15 * max(small.seconds, 0.05), "10x the records took \(big.seconds / small.seconds)x the time"
        )
    }
}
