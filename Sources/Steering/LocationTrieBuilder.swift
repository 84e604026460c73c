import Foundation
public import Geo

/// Builds a name's tries from the databases and CIDR maps, interning the classes.
public struct LocationTrieBuilder {
    let classifier: Classifier
    let city: GeoDatabase?
    let asnDB: GeoDatabase?
    public private(set) var classes: [LocationClass] = []
    private var classIndex: [LocationClass: Int] = [:]
    private var factsCache: [FactsKey: UInt32] = [:]
    /// The class of each city record when nothing else (CIDR maps, ASN) applies: the common case.
    private var recordClass: [UInt32]

    struct FactsKey: Hashable {
        var record: Int
        var asn: Int
        var geoNet: Int
        var latencyNet: Int
    }

    /// A trie of the CIDR-map entries of one family: which geo / latency entry ends at each node.
    struct NetsTrie {
        var children: [(Int32, Int32)] = [(-1, -1)]
        var geo: [Int32] = [-1]
        var latency: [Int32] = [-1]

        mutating func insert(_ p: Prefix, geo g: Int?, latency l: Int?) {
            var n = 0
            for i in 0..<p.length {
                let b = p.bit(i)
                var next = b == 0 ? children[n].0 : children[n].1
                if next < 0 {
                    next = Int32(children.count)
                    children.append((-1, -1))
                    geo.append(-1)
                    latency.append(-1)
                    if b == 0 { children[n].0 = next } else { children[n].1 = next }
                }
                n = Int(next)
            }
            if let g { geo[n] = Int32(g) }
            if let l { latency[n] = Int32(l) }
        }
    }

    public init(classifier: Classifier, city: GeoDatabase?, asn: GeoDatabase?) {
        self.classifier = classifier
        self.city = city
        self.asnDB = asn
        self.recordClass = [UInt32](repeating: 0, count: (city?.records.count ?? 0) + 1)
    }

    var usesDatabase: Bool { classifier.name.has(.geo) || classifier.name.has(.latency) }

    /// The class for facts; interned.
    mutating func classCode(record: Int?, asn: Int?, geoNet: Int?, latencyNet: Int?) -> UInt32 {
        let simple = asn == nil && geoNet == nil && latencyNet == nil
        let slot = (record ?? -1) + 1
        if simple, recordClass[slot] != 0 { return recordClass[slot] }
        let code = slowClassCode(record: record, asn: asn, geoNet: geoNet, latencyNet: latencyNet)
        if simple { recordClass[slot] = code }
        return code
    }

    mutating func slowClassCode(record: Int?, asn: Int?, geoNet: Int?, latencyNet: Int?) -> UInt32 {
        let key = FactsKey(record: record ?? -1, asn: asn ?? -1, geoNet: geoNet ?? -1, latencyNet: latencyNet ?? -1)
        if let c = factsCache[key] { return c }
        var facts = LocationFacts(geoNet: geoNet, latencyNet: latencyNet)
        if let record, let city { facts.record = city.records[record] }
        if let asn, let asnDB { facts.asn = asnDB.records[asn].asn }
        let (cls, _) = classifier.classify(facts)
        let index: Int
        if let i = classIndex[cls] {
            index = i
        } else {
            index = classes.count
            classes.append(cls)
            classIndex[cls] = index
        }
        let code = UInt32(index) | LocationTrie.leafBit
        factsCache[key] = code
        return code
    }

    /// The trie for one family (4 or 6), compiled into its lookup table unless `expand` is false.
    public mutating func build(family: Int, expand: Bool = true) -> LocationTrie {
        var trie = LocationTrie()
        let name = classifier.name
        var nets = NetsTrie()
        if name.has(.geo), let geo = name.geo {
            for (i, (p, _)) in geo.nets.enumerated() where p.family == family { nets.insert(p, geo: i, latency: nil) }
        }
        if name.has(.latency), let lat = name.latency {
            for (i, (p, _)) in lat.nets.enumerated() where p.family == family { nets.insert(p, geo: nil, latency: i) }
        }
        func root(_ db: GeoDatabase?) -> GeoDatabase.Branch {
            guard let db, usesDatabase else { return .empty }
            if family == 4 { return db.ipv4Root }
            return db.ipVersion == 6 ? .node(0) : .empty
        }
        let cityRoot = root(city)
        let asnRoot = root(asnDB)
        let v4Start: UInt32? = {
            if family == 6, let city, city.ipVersion == 6, case .node(let n) = city.ipv4Root { return n }
            return nil
        }()
        let maxDepth = family == 4 ? 32 : 128

        func build(
            _ db: GeoDatabase.Branch, _ asn: GeoDatabase.Branch, _ netsNode: Int, _ geoNet: Int, _ latNet: Int,
            _ depth: Int
        ) -> UInt32 {
            var geoNet = geoNet
            var latNet = latNet
            if netsNode >= 0 {
                if nets.geo[netsNode] >= 0 { geoNet = Int(nets.geo[netsNode]) }
                if nets.latency[netsNode] >= 0 { latNet = Int(nets.latency[netsNode]) }
            }
            let netsDone = netsNode < 0 || (nets.children[netsNode].0 < 0 && nets.children[netsNode].1 < 0)
            var dbB = db
            var asnB = asn
            // IPv4 under an IPv6 database (::/96, ::ffff:0:0/96, 2002::/16) is looked up as IPv4.
            if case .node(let n) = dbB, n == v4Start { dbB = .empty }
            // Once the CIDR maps decide everything the class depends on, the databases no longer matter.
            let geoFixed = !name.has(.geo) || geoNet >= 0
            let latFixed = !name.has(.latency) || latNet >= 0
            if netsDone && geoFixed && latFixed {
                dbB = .empty
                asnB = .empty
            }
            let dbLeaf: Bool = {
                if case .node = dbB { return false }
                return true
            }()
            let asnLeaf: Bool = {
                if case .node = asnB { return false }
                return true
            }()
            if (netsDone && dbLeaf && asnLeaf) || depth == maxDepth {
                var rec: Int? = nil
                var asnRec: Int? = nil
                if case .record(let r) = dbB { rec = r }
                if case .record(let r) = asnB { asnRec = r }
                return classCode(
                    record: rec, asn: asnRec, geoNet: geoNet >= 0 ? geoNet : nil,
                    latencyNet: latNet >= 0 ? latNet : nil)
            }
            // Search trees share no subtrees apart from the IPv4 aliases skipped above: no memo needed.
            let (d0, d1): (GeoDatabase.Branch, GeoDatabase.Branch) = {
                if case .node(let n) = dbB, let city { return city.branches(of: n) }
                return (dbB, dbB)
            }()
            let (a0, a1): (GeoDatabase.Branch, GeoDatabase.Branch) = {
                if case .node(let n) = asnB, let asnDB { return asnDB.branches(of: n) }
                return (asnB, asnB)
            }()
            let n0 = netsNode >= 0 ? Int(nets.children[netsNode].0) : -1
            let n1 = netsNode >= 0 ? Int(nets.children[netsNode].1) : -1
            let c0 = build(d0, a0, n0, geoNet, latNet, depth + 1)
            let c1 = build(d1, a1, n1, geoNet, latNet, depth + 1)
            let code: UInt32
            if c0 == c1 && c0 & LocationTrie.leafBit != 0 {
                code = c0  // neighbours agree: one larger network
            } else {
                code = UInt32(trie.nodes.count / 2)
                trie.nodes.append(c0)
                trie.nodes.append(c1)
            }
            return code
        }
        trie.root = build(cityRoot, asnRoot, 0, -1, -1, 0)
        if expand { trie.compile(classes: classes.count) }
        return trie
    }
}
