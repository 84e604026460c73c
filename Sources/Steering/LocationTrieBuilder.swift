import Foundation
public import Geo

/// Builds a name's tries from the databases and CIDR maps, interning the classes.
///
/// gdnsd's way: every distinct location of the database is classified once (on every core), then
/// the search tree is walked once per family (the two families at once), each network mapped to
/// its class, and neighbours of one class merged into the largest network: the trie's size grows
/// with the number of answer boundaries, not with the database.
public struct LocationTrieBuilder: Sendable {
    let classifier: Classifier
    let city: GeoInput?
    let asnDB: GeoInput?
    public private(set) var classes: [LocationClass] = []
    private var classIndex: [LocationClass: Int] = [:]
    private var factsCache: [FactsKey: UInt32] = [:]
    /// The class code of each city location when nothing else (CIDR maps, ASN) applies: the
    /// common case (0: not computed yet; slot 0 is "no record").
    private var locationClass: [UInt32]

    struct FactsKey: Hashable {
        var location: Int
        var asn: Int
        var geoNet: Int
        var latencyNet: Int
    }

    /// A trie of the CIDR-map entries of one family: which geo / latency entry ends at each node.
    struct NetsTrie: Sendable {
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

    public init(classifier: Classifier, city: GeoInput?, asn: GeoInput?) {
        self.classifier = classifier
        self.city = city
        self.asnDB = asn
        self.locationClass = [UInt32](repeating: 0, count: (city?.locations.records.count ?? 0) + 1)
    }

    var usesDatabase: Bool { classifier.name.has(.geo) || classifier.name.has(.latency) }

    /// Both tries and the classes they index, each family walked on a core of its own.
    public static func build(classifier: Classifier, city: GeoInput?, asn: GeoInput?) -> (
        v4: LocationTrie, v6: LocationTrie, classes: [LocationClass]
    ) {
        var base = LocationTrieBuilder(classifier: classifier, city: city, asn: asn)
        base.classifyLocations()
        let start = base
        let parts = Parallel.map(2) { i in
            var b = start
            let trie = b.build(family: i == 0 ? 4 : 6, expand: false)
            return (trie, b)
        }
        var (v4, merged) = parts[0]
        var v6 = parts[1].0
        // The IPv6 walk's classes join the IPv4 walk's (those classified up front share indices).
        let extra = parts[1].1.classes
        var remap = [UInt32](repeating: 0, count: extra.count)
        for (i, c) in extra.enumerated() { remap[i] = UInt32(merged.intern(c)) }
        v6.remapLeaves { remap[Int($0)] }
        let count = merged.classes.count
        let binary = [v4, v6]
        let tables = Parallel.map(2) { i in
            var t = binary[i]
            t.compile(classes: count)
            return t
        }
        (v4, v6) = (tables[0], tables[1])
        return (v4, v6, merged.classes)
    }

    /// Classifies every distinct city location up front, on every core.
    mutating func classifyLocations() {
        guard usesDatabase, let city else { return }
        let records = city.locations.records
        let classifier = self.classifier
        let parts = Parallel.parts(records.count, minimum: 20_000)
        let chunks = Parallel.map(parts) { part in
            ((records.count * part / parts)..<(records.count * (part + 1) / parts)).map { i in
                classifier.classify(LocationFacts(record: records[i]), explain: false).0
            }
        }
        var i = 0
        for chunk in chunks {
            for cls in chunk {
                locationClass[i + 1] = UInt32(intern(cls)) | LocationTrie.leafBit
                i += 1
            }
        }
    }

    /// The index of a class, added when new.
    mutating func intern(_ cls: LocationClass) -> Int {
        if let i = classIndex[cls] { return i }
        let index = classes.count
        classes.append(cls)
        classIndex[cls] = index
        return index
    }

    /// The class for facts (a city record and an ASN record by rank, CIDR-map entries); interned.
    mutating func classCode(record: Int?, asn: Int?, geoNet: Int?, latencyNet: Int?) -> UInt32 {
        let location = record.map { Int(city!.locations.ofRecord[$0]) }
        let simple = asn == nil && geoNet == nil && latencyNet == nil
        let slot = (location ?? -1) + 1
        if simple, locationClass[slot] != 0 { return locationClass[slot] }
        let code = slowClassCode(location: location, asn: asn, geoNet: geoNet, latencyNet: latencyNet)
        if simple { locationClass[slot] = code }
        return code
    }

    mutating func slowClassCode(location: Int?, asn: Int?, geoNet: Int?, latencyNet: Int?) -> UInt32 {
        let asnNumber = asn.flatMap { asnDB!.locations.records[Int(asnDB!.locations.ofRecord[$0])].asn }
        let key = FactsKey(
            location: location ?? -1, asn: asnNumber.map(Int.init) ?? -1, geoNet: geoNet ?? -1,
            latencyNet: latencyNet ?? -1)
        if let c = factsCache[key] { return c }
        var facts = LocationFacts(geoNet: geoNet, latencyNet: latencyNet)
        if let location, let city { facts.record = city.locations.records[location] }
        facts.asn = asnNumber
        let code = UInt32(intern(classifier.classify(facts, explain: false).0)) | LocationTrie.leafBit
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
        let empty = GeoTree.empty
        func root(_ input: GeoInput?) -> UInt32 {
            guard let db = input?.database, usesDatabase else { return empty }
            if family == 4 { return db.ipVersion == 6 ? db.tree.ipv4Start : 0 }
            return db.ipVersion == 6 ? 0 : empty
        }
        let cityTree = city?.database.tree
        let asnTree = asnDB?.database.tree
        let cityNodes = cityTree?.nodeCount ?? 0
        let asnNodes = asnTree?.nodeCount ?? 0
        // IPv4 under an IPv6 database (::/96, ::ffff:0:0/96, 2002::/16) is looked up as IPv4.
        let v4Start: UInt32 = {
            if family == 6, let db = city?.database, db.ipVersion == 6 {
                let s = db.tree.ipv4Start
                if s < cityNodes { return s }
            }
            return empty
        }()
        let maxDepth = family == 4 ? 32 : 128
        let hasGeo = name.has(.geo)
        let hasLatency = name.has(.latency)

        func build(_ db: UInt32, _ asn: UInt32, _ netsNode: Int, _ geoNet: Int, _ latNet: Int, _ depth: Int) -> UInt32 {
            var geoNet = geoNet
            var latNet = latNet
            if netsNode >= 0 {
                if nets.geo[netsNode] >= 0 { geoNet = Int(nets.geo[netsNode]) }
                if nets.latency[netsNode] >= 0 { latNet = Int(nets.latency[netsNode]) }
            }
            let netsDone = netsNode < 0 || (nets.children[netsNode].0 < 0 && nets.children[netsNode].1 < 0)
            var dbB = db == v4Start ? empty : db
            var asnB = asn
            // Once the CIDR maps decide everything the class depends on, the databases no longer matter.
            let geoFixed = !hasGeo || geoNet >= 0
            let latFixed = !hasLatency || latNet >= 0
            if netsDone && geoFixed && latFixed {
                dbB = empty
                asnB = empty
            }
            let dbNode = dbB < cityNodes
            let asnNode = asnB < asnNodes
            if (netsDone && !dbNode && !asnNode) || depth == maxDepth {
                let rec = !dbNode && dbB != empty ? Int(dbB & ~GeoTree.recordBit) : nil
                let asnRec = !asnNode && asnB != empty ? Int(asnB & ~GeoTree.recordBit) : nil
                return classCode(
                    record: rec, asn: asnRec, geoNet: geoNet >= 0 ? geoNet : nil,
                    latencyNet: latNet >= 0 ? latNet : nil)
            }
            // Search trees share no subtrees apart from the IPv4 aliases skipped above: no memo needed.
            let (d0, d1) = dbNode ? cityTree!.branches(dbB) : (dbB, dbB)
            let (a0, a1) = asnNode ? asnTree!.branches(asnB) : (asnB, asnB)
            let n0 = netsNode >= 0 ? Int(nets.children[netsNode].0) : -1
            let n1 = netsNode >= 0 ? Int(nets.children[netsNode].1) : -1
            let c0 = build(d0, a0, n0, geoNet, latNet, depth + 1)
            let c1 = build(d1, a1, n1, geoNet, latNet, depth + 1)
            if c0 == c1 && c0 & LocationTrie.leafBit != 0 {
                return c0  // neighbours agree: one larger network
            }
            let code = UInt32(trie.nodes.count / 2)
            trie.nodes.append(c0)
            trie.nodes.append(c1)
            return code
        }
        trie.root = build(root(city), root(asnDB), 0, -1, -1, 0)
        if expand { trie.compile(classes: classes.count) }
        return trie
    }
}
