import Foundation
import Geo
import OriginSupport
import Testing

@testable import Steering

/// The compile before issue 26, kept as the reference: libmaxminddb's node reader
/// (`referenceBranches`) and path lookups (`referenceRecords`), every record classified on its own
/// with its explanation, one walk per family. The compile in use reads the tree in place, decodes
/// each location once, classifies on every core and walks both families at once; it must give
/// every address the same class, and never a narrower network (the ECS scope).
private struct ReferenceBuilder {
    let classifier: Classifier
    let city: GeoDatabase?
    let cityRecords: [GeoRecord]
    let asnDB: GeoDatabase?
    let asnRecords: [GeoRecord]
    var classes: [LocationClass] = []
    var classIndex: [LocationClass: Int] = [:]
    var recordClass: [Int: UInt32] = [:]
    var factsCache: [[Int]: UInt32] = [:]

    init(classifier: Classifier, city: GeoDatabase?, asn: GeoDatabase?) {
        self.classifier = classifier
        self.city = city
        self.asnDB = asn
        cityRecords = city?.referenceRecords() ?? []
        asnRecords = asn?.referenceRecords() ?? []
    }

    mutating func classCode(record: Int?, asn: Int?, geoNet: Int?, latencyNet: Int?) -> UInt32 {
        let simple = asn == nil && geoNet == nil && latencyNet == nil
        if simple, let c = recordClass[record ?? -1] { return c }
        let key = [record ?? -1, asn ?? -1, geoNet ?? -1, latencyNet ?? -1]
        if let c = factsCache[key] { return c }
        var facts = LocationFacts(geoNet: geoNet, latencyNet: latencyNet)
        if let record { facts.record = cityRecords[record] }
        if let asn { facts.asn = asnRecords[asn].asn }
        let cls = classifier.classify(facts).0
        let index = classIndex[cls] ?? classes.count
        if index == classes.count {
            classes.append(cls)
            classIndex[cls] = index
        }
        let code = UInt32(index) | LocationTrie.leafBit
        factsCache[key] = code
        if simple { recordClass[record ?? -1] = code }
        return code
    }

    /// libmaxminddb's IPv4 start: 96 zero bits from the root of an IPv6 tree.
    static func ipv4Root(_ db: GeoDatabase) -> UInt32 {
        guard db.ipVersion == 6 else { return 0 }
        var b: UInt32 = 0
        for _ in 0..<96 where b < db.nodeCount { b = db.referenceBranches(b).0 }
        return b
    }

    mutating func build(family: Int) -> LocationTrie {
        var trie = LocationTrie()
        let name = classifier.name
        var nets = LocationTrieBuilder.NetsTrie()
        if name.has(.geo), let geo = name.geo {
            for (i, (p, _)) in geo.nets.enumerated() where p.family == family { nets.insert(p, geo: i, latency: nil) }
        }
        if name.has(.latency), let lat = name.latency {
            for (i, (p, _)) in lat.nets.enumerated() where p.family == family { nets.insert(p, geo: nil, latency: i) }
        }
        let empty = GeoTree.empty
        func root(_ db: GeoDatabase?) -> UInt32 {
            guard let db else { return empty }
            if family == 4 { return Self.ipv4Root(db) }
            return db.ipVersion == 6 ? 0 : empty
        }
        let v4Start: UInt32 = family == 6 && city?.ipVersion == 6 ? Self.ipv4Root(city!) : empty
        let maxDepth = family == 4 ? 32 : 128
        func isNode(_ c: UInt32, _ db: GeoDatabase?) -> Bool { db != nil && c < db!.nodeCount }
        func walk(_ db: UInt32, _ asn: UInt32, _ netsNode: Int, _ geoNet: Int, _ latNet: Int, _ depth: Int) -> UInt32 {
            var geoNet = geoNet
            var latNet = latNet
            if netsNode >= 0 {
                if nets.geo[netsNode] >= 0 { geoNet = Int(nets.geo[netsNode]) }
                if nets.latency[netsNode] >= 0 { latNet = Int(nets.latency[netsNode]) }
            }
            let netsDone = netsNode < 0 || (nets.children[netsNode].0 < 0 && nets.children[netsNode].1 < 0)
            var dbB = isNode(db, city) && db == v4Start ? empty : db
            var asnB = asn
            if netsDone && (!name.has(.geo) || geoNet >= 0) && (!name.has(.latency) || latNet >= 0) {
                dbB = empty
                asnB = empty
            }
            let dbLeaf = !isNode(dbB, city)
            let asnLeaf = !isNode(asnB, asnDB)
            if (netsDone && dbLeaf && asnLeaf) || depth == maxDepth {
                return classCode(
                    record: dbLeaf && dbB != empty ? Int(dbB & ~GeoTree.recordBit) : nil,
                    asn: asnLeaf && asnB != empty ? Int(asnB & ~GeoTree.recordBit) : nil,
                    geoNet: geoNet >= 0 ? geoNet : nil, latencyNet: latNet >= 0 ? latNet : nil)
            }
            let (d0, d1) = dbLeaf ? (dbB, dbB) : city!.referenceBranches(dbB)
            let (a0, a1) = asnLeaf ? (asnB, asnB) : asnDB!.referenceBranches(asnB)
            let n0 = netsNode >= 0 ? Int(nets.children[netsNode].0) : -1
            let n1 = netsNode >= 0 ? Int(nets.children[netsNode].1) : -1
            let c0 = walk(d0, a0, n0, geoNet, latNet, depth + 1)
            let c1 = walk(d1, a1, n1, geoNet, latNet, depth + 1)
            if c0 == c1 && c0 & LocationTrie.leafBit != 0 { return c0 }
            let code = UInt32(trie.nodes.count / 2)
            trie.nodes.append(c0)
            trie.nodes.append(c1)
            return code
        }
        trie.root = walk(root(city), root(asnDB), 0, -1, -1, 0)
        return trie
    }
}

@Suite("The compile of location maps against the one before it")
struct CompileDifferentialTests {
    /// Names covering what a class depends on: continent rules with nearest-next, country and
    /// subdivision rules with a default and spread failover, a latency map estimated from
    /// distance, CIDR maps and ASN rules over an ASN database, and distance alone.
    static func model() -> SteeringModel {
        var m = makeModel(chain: [.health, .geo, .failover])
        var base = m.names[0]
        base.geo = nil
        func name(_ label: String, _ chain: [PolicyStep], _ edit: (inout SteeredName) -> Void) -> SteeredName {
            var n = base
            n.name = label + ".example.com."
            n.wire = [UInt8(label.utf8.count)] + Array(label.utf8) + Array(base.wire[4...])
            n.chain = chain
            edit(&n)
            return n
        }
        var continent = GeoRules()
        continent.continent = ["NA": [0], "SA": [0], "EU": [1], "AF": [1], "AS": [2], "OC": [2]]
        var country = GeoRules()
        country.country = ["US": [0], "DE": [1], "JP": [2], "BR": [0, 1]]
        country.subdivision = ["US-CA": [2], "DE-BY": [0]]
        country.defaultRegions = [1]
        var latency = LatencyMap()
        latency.country = ["US": [0: 20, 1: 90], "GB": [1: 15]]
        latency.continent = ["AS": [2: 30, 1: 150, 0: 180]]
        var nets = GeoRules()
        nets.continent = ["EU": [1]]
        nets.asn = [64500: [2], 64501: [0]]
        nets.nets = [
            (Prefix(family: 4, high: 0x0A00_0000 << 32, low: 0, length: 8), [1]),
            (Prefix(family: 4, high: 0x5000_0000 << 32, low: 0, length: 6), [2]),
            (Prefix(family: 6, high: 0x2001_0DB8_0000_0000, low: 0, length: 32), [2]),
            (Prefix(family: 6, high: 0x2A00_0000_0000_0000, low: 0, length: 12), [0])
        ]
        m.names = [
            name("continent", [.health, .geo, .failover]) { $0.geo = continent },
            name("country", [.health, .geo, .failover]) {
                $0.geo = country
                $0.spread = true
            },
            name("latency", [.health, .latency, .failover]) { $0.latency = latency },
            name("nets", [.health, .geo, .failover]) { $0.geo = nets },
            name("nearest", [.health, .geo, .failover]) { $0.geo = GeoRules() }
        ]
        return m
    }

    /// An ASN database: AS64500 and AS64501 over networks that cross the City database's.
    static func asnDatabase(_ dir: String) throws -> GeoDatabase {
        let script = """
            from mmdb_writer import MMDBWriter
            from netaddr import IPSet
            w = MMDBWriter(ip_version=6, database_type="GeoLite2-ASN", ipv4_compatible=True)
            w.insert_network(IPSet(["81.0.0.0/9", "8.8.8.0/24", "2a00:1450::/29"]),
                             {"autonomous_system_number": 64500, "autonomous_system_organization": "A"})
            w.insert_network(IPSet(["1.0.0.0/8", "203.0.113.0/24", "2001:4860::/32"]),
                             {"autonomous_system_number": 64501, "autonomous_system_organization": "B"})
            w.to_db_file("\(dir)/asn.mmdb")
            """
        try #require(try Python.run(script) == 0, "mmdb-writer is not installed")
        return try GeoDatabase(path: dir + "/asn.mmdb")
    }

    @Test("100,000 random IPv4 and IPv6 addresses and ECS prefixes: the same class, and a scope never narrower")
    func sameAnswers() throws {
        let path = try #require(GeoLite2.path, "maxminddb-geolite2 is not installed")
        let dir = NSTemporaryDirectory() + "compile-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let city = try GeoDatabase(path: path)
        let asn = try Self.asnDatabase(dir)
        let m = Self.model()
        let table = SteeringTable(model: m, city: city, asn: asn)
        var rng: UInt64 = 0x26_2026
        func next() -> UInt64 {
            rng = mix(rng &+ 0x9E37_79B9_7F4A_7C15)
            return rng
        }
        // IPv6 prefixes where the database's networks are, and the IPv4 aliases in it.
        let v6Prefixes: [UInt64] = [
            0x2001_0DB8, 0x2A00_1450, 0x2600_1F18, 0x2001_4860, 0x2A02_0000, 0x2400_CB00, 0x0000_0000, 0x2002_0000
        ]
        for (n, name) in m.names.enumerated() {
            let c = table.names[n]
            var reference = ReferenceBuilder(
                classifier: Classifier(model: m, name: name), city: city, asn: asn)
            let old4 = reference.build(family: 4)
            let old6 = reference.build(family: 6)
            #expect(c.v4.compiled && c.v6.compiled)
            var differentClass = 0
            var narrower = 0
            var wider = 0
            for i in 0..<20_000 {
                let family = i % 2 == 0 ? 4 : 6
                var high = next()
                var low = next()
                if family == 4 {
                    high &= 0xFFFF_FFFF_0000_0000
                    low = 0
                } else if i % 4 == 1 {
                    let p = v6Prefixes[i / 4 % v6Prefixes.count]
                    high = p << 32 | high & 0xFFFF_FFFF
                    if p == 0 {  // ::/96 and ::ffff:0:0/96, the IPv4 aliases
                        high = 0
                        low = (i % 8 == 1 ? 0x0000_FFFF_0000_0000 : 0) | low & 0xFFFF_FFFF
                    }
                }
                // An ECS source prefix: most often /24 and /56, otherwise any length.
                let bits = family == 4 ? 32 : 128
                let source = [24, 56, Int(next() % UInt64(bits + 1))][i % 3 == 2 ? 2 : (family == 4 ? 0 : 1)]
                let length = min(source, bits)
                if length < 64 {
                    high &= length == 0 ? 0 : ~0 << UInt64(64 - length)
                    low = 0
                } else if length < 128 {
                    low &= ~0 << UInt64(128 - length)
                }
                let new = family == 4 ? c.v4.locate(high: high, low: low) : c.v6.locate(high: high, low: low)
                let old = family == 4 ? old4.walk(high: high, low: low) : old6.walk(high: high, low: low)
                if c.classes[new.cls] != reference.classes[old.cls] { differentClass += 1 }
                if new.depth > old.depth { narrower += 1 }
                if new.depth < old.depth { wider += 1 }
            }
            #expect(differentClass == 0, "\(name.name): \(differentClass) of 20,000 addresses get another class")
            #expect(narrower == 0, "\(name.name): \(narrower) answers with a narrower ECS scope")
            #expect(wider == 0, "\(name.name): \(wider) answers with a wider ECS scope (the same merge was expected)")
        }
    }

    @Test("each address's class is what libmaxminddb's lookup and the rules give it")
    func perAddress() throws {
        let path = try #require(GeoLite2.path, "maxminddb-geolite2 is not installed")
        let city = try GeoDatabase(path: path)
        let m = Self.model()
        let table = SteeringTable(model: m, city: city, asn: nil)
        var rng: UInt64 = 0xEC5
        for (n, name) in m.names.enumerated() where name.geo?.nets.isEmpty != false {
            let c = table.names[n]
            let classifier = Classifier(model: m, name: name)
            var differ = 0
            for i in 0..<4000 {
                rng = mix(rng)
                let v4 = i % 2 == 0
                let high = v4 ? rng & 0xFFFF_FFFF_0000_0000 : 0x2000_0000_0000_0000 | rng >> 4
                let low = v4 ? 0 : mix(rng)
                let octets =
                    v4
                    ? (0..<4).map { UInt8(truncatingIfNeeded: high >> (56 - 8 * UInt64($0))) }
                    : (0..<8).map { UInt8(truncatingIfNeeded: high >> (56 - 8 * UInt64($0))) }
                        + (0..<8).map { UInt8(truncatingIfNeeded: low >> (56 - 8 * UInt64($0))) }
                let found = v4 ? c.v4.locate(high: high, low: low) : c.v6.locate(high: high, low: low)
                let expected = classifier.classify(LocationFacts(record: city.lookup(octets))).0
                if c.classes[found.cls] != expected { differ += 1 }
            }
            #expect(differ == 0, "\(name.name): \(differ) of 4,000 addresses")
        }
    }
}
