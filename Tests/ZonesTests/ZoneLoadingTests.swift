import DNSWire
import Foundation
import Testing
import Zones

@Suite struct ZoneLoadingTests {
    static let fixtures: String = {
        var url = URL(fileURLWithPath: #filePath)
        url.deleteLastPathComponent()
        url.deleteLastPathComponent()
        return url.path + "/Fixtures"
    }()

    static func load(_ file: String, _ origin: String) -> ZoneDirectory.Loaded {
        ZoneDirectory.loadFile(fixtures + "/zones/" + file, origin: origin)
    }

    static func node(_ zone: Zone, _ name: String) -> Int {
        Name.fromText(name)!.withUnsafeBytes { zone.find($0) }
    }

    @Test("The fixture zone loads with its flags: apex, cuts, glue, wildcards, DNAME, empty non-terminals")
    func flags() throws {
        let loaded = Self.load("example.com.zone", "example.com.")
        let zone = try #require(loaded.zone, "\(loaded.problems)")
        #expect(loaded.problems.isEmpty)
        #expect(zone.serial == 2_026_112_301)
        let flag = { (name: String) in zone.nodes[Self.node(zone, name)].flags }
        #expect(flag("example.com.") & Zone.Flag.apex != 0)
        #expect(flag("sub.example.com.") & Zone.Flag.delegation != 0)
        #expect(flag("ns1.sub.example.com.") & Zone.Flag.occluded != 0)
        #expect(flag("wild.example.com.") & Zone.Flag.wildcardChild != 0)
        #expect(flag("dn.example.com.") & Zone.Flag.dname != 0)
        #expect(flag("alias.example.com.") & Zone.Flag.cname != 0)
        // Empty non-terminals exist as nodes without RRsets.
        let ent = Self.node(zone, "y.ent.example.com.")
        #expect(ent >= 0 && zone.nodes[ent].rrsetCount == 0)
        #expect(Self.node(zone, "nothere.example.com.") == -1)
        // Lookups are case-insensitive.
        #expect(Self.node(zone, "WWW.EXAMPLE.COM.") == Self.node(zone, "www.example.com."))
        // $INCLUDE with an origin.
        #expect(Self.node(zone, "host.inc.example.com.") >= 0)
    }

    @Test("Duplicate records are dropped; differing TTLs in an RRset warn and keep the first")
    func duplicates() throws {
        let dir = NSTemporaryDirectory() + "zt-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\nns 60 A 192.0.2.1\nns 120 A 192.0.2.2\n"
            .write(toFile: dir + "/d.test.zone", atomically: true, encoding: .utf8)
        let l = ZoneDirectory.loadFile(dir + "/d.test.zone", origin: "d.test.")
        let zone = try #require(l.zone)
        let r = zone.rrset(at: Self.node(zone, "ns.d.test."), type: RRType.a)
        #expect(zone.rrsets[r].count == 2 && zone.rrsets[r].ttl == 60)
        #expect(l.problems.count == 1 && l.problems[0].isWarning && l.problems[0].line == 6)
    }

    @Test("A class or type past 16 bits is an error at its line, not a trap (found by fuzzing)")
    func wideClassAndType() throws {
        let dir = NSTemporaryDirectory() + "zw-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "$TTL 60\n@ SOA ns h 1 2 3 4 5\n@ NS ns\nns A 192.0.2.1\nx CLASS70000 A 192.0.2.2\ny TYPE70000 \\# 0\n"
            .write(toFile: dir + "/w.test.zone", atomically: true, encoding: .utf8)
        let l = ZoneDirectory.loadFile(dir + "/w.test.zone", origin: "w.test.")
        #expect(l.zone == nil)
        #expect(l.problems.map(\.line) == [5, 6], "\(l.problems)")
        #expect(l.problems.first?.message == "class 70000 does not fit in 16 bits")
    }

    @Test("Parsing on every core gives exactly the records of a sequential parse")
    func parallelEqualsSequential() throws {
        let dir = NSTemporaryDirectory() + "zp-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var text = "$TTL 300\n@ IN SOA ns h ( 1 2\n 3 4 5 )\n@ NS ns\nns A 192.0.2.1\n"
        for i in 0..<3000 {
            if i == 1000 { text += "$ORIGIN sub.p.test.\n" }
            if i == 2000 { text += "$TTL 99\n" }
            text += i % 7 == 0 ? "h\(i) IN TXT ( \"a\"\n  \"b\" ) ; multi-line\n" : "h\(i) IN A 192.0.2.\(i % 250)\n"
            if i % 11 == 0 { text += "    IN AAAA 2001:db8::\(i)\n" }  // owner carried from the previous line
        }
        try text.write(toFile: dir + "/p.test.zone", atomically: true, encoding: .utf8)
        var seq = RecordList()
        var par = RecordList()
        var e1: [ZoneError] = []
        var e2: [ZoneError] = []
        ZoneFileReader.read(path: dir + "/p.test.zone", origin: "p.test.", into: &seq, errors: &e1)
        ZoneFileReader.read(
            path: dir + "/p.test.zone", origin: "p.test.", into: &par, errors: &e2, parallelThreshold: 1)
        #expect(e1.isEmpty && e2.isEmpty)
        #expect(seq.entries.count == par.entries.count && seq.entries.count > 3000)
        for (a, b) in zip(seq.entries, par.entries) {
            #expect(
                seq.owner(a) == par.owner(b) && seq.rdata(a) == par.rdata(b) && a.ttl == b.ttl && a.type == b.type
                    && a.line == b.line)
        }
    }

    @Test("Zone file names map to zone names")
    func fileNames() {
        #expect(ZoneDirectory.origin(forFile: "example.com.zone") == "example.com.")
        #expect(ZoneDirectory.origin(forFile: "root.zone") == ".")
        #expect(ZoneDirectory.origin(forFile: "included.inc") == nil)
    }
}
