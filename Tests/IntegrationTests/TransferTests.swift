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
        #expect(current.raw.split(separator: "\n").filter { !$0.hasPrefix(";") && !$0.isEmpty }.count == 1, "\(current)")
        let old = try server.dig("example.com", "IXFR=1")
        #expect(old.raw.split(separator: "\n").filter { !$0.hasPrefix(";") && !$0.isEmpty }.count == 83, "\(old)")
    }
}
