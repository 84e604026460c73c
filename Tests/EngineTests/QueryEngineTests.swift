import Config
import DNSWire
import Engine
import Foundation
import Server
import Testing
import Zones

/// The engine in memory: no sockets, responses rendered as zone text through libldns.
@Suite struct QueryEngineTests {
    static let engine: QueryEngine = {
        var url = URL(fileURLWithPath: #filePath)
        url.deleteLastPathComponent()
        url.deleteLastPathComponent()
        let loaded = try! ZoneDirectory.load(url.path + "/Fixtures/zones")
        return QueryEngine(zones: ZoneSet(loaded.compactMap(\.zone)), options: EngineOptions(), metrics: QueryMetrics())
    }()

    static func ask(_ name: String, _ type: UInt16, edns: UInt16? = nil, transport: Transport = .udp) -> MessageText {
        var q: [UInt8] = [0xAB, 0xCD, 0, 0, 0, 1, 0, 0, 0, 0, 0, edns == nil ? 0 : 1]
        q += Name.fromText(name)! + [UInt8(type >> 8), UInt8(type & 0xFF), 0, 1]
        if let edns { q += [0, 0, 41, UInt8(edns >> 8), UInt8(edns & 0xFF), 0, 0, 0, 0, 0, 0] }
        var out = [UInt8](repeating: 0, count: 65535)
        let n = q.withUnsafeBytes { p in
            out.withUnsafeMutableBytes { o in
                engine.respond(to: p, into: o.baseAddress!, capacity: o.count, transport: transport, client: .unknown)
            }
        }
        return MessageText(Array(out[0..<n]))!
    }

    @Test("Positive answer with AA")
    func positive() {
        let r = Self.ask("www.example.com.", RRType.a)
        #expect(r.rcode == "NOERROR" && r.flags == ["qr", "aa"])
        #expect(r.answer == ["www.example.com. 3600 IN A 192.0.2.10", "www.example.com. 3600 IN A 192.0.2.11"])
    }

    @Test("Referral without AA, NS in authority, glue in additional")
    func referral() {
        let r = Self.ask("x.sub.example.com.", RRType.a)
        #expect(r.flags == ["qr"] && r.answer.isEmpty)
        #expect(r.authority.count == 2 && r.additional.count == 2)
    }

    @Test("Without EDNS, 512 octets; over TCP, the whole RRset")
    func sizes() {
        #expect(Self.ask("bigtxt.example.com.", RRType.txt).flags.contains("tc"))
        #expect(Self.ask("bigtxt.example.com.", RRType.txt, edns: 4096).flags.contains("tc"))
        let tcp = Self.ask("bigtxt.example.com.", RRType.txt, transport: .tcp)
        #expect(!tcp.flags.contains("tc") && tcp.answer.count == 20)
    }

    @Test("Names in no zone are REFUSED; the child zone answers for itself")
    func zoneSelection() {
        #expect(Self.ask("example.net.", RRType.a).rcode == "REFUSED")
        #expect(Self.ask("www.child.example.com.", RRType.a).answer == ["www.child.example.com. 300 IN A 192.0.2.171"])
        #expect(
            Self.ask("child.example.com.", RRType.soa).answer.first?.hasPrefix("child.example.com. 300 IN SOA") == true)
    }
}
