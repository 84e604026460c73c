import Foundation
import Geo

/// What one name's location-dependent steps (geo, latency) make of a client: the pools in the
/// order to try, and the expected RTT to each. Computed at load for every distinct location.
public struct LocationClass: Sendable, Equatable, Hashable {
    /// Pool indices (global), best first.
    public var order: [Int]
    /// Expected RTT in ms per pool of `order` (same positions); empty without a latency step.
    public var rtt: [Double]
}

/// The facts known about a client location, as the classifier reads them.
public struct LocationFacts: Sendable {
    public var record: GeoRecord?
    public var asn: UInt32?
    /// Index into the name's geo `nets` (longest match), and into the latency `nets`.
    public var geoNet: Int?
    public var latencyNet: Int?

    public init(record: GeoRecord? = nil, asn: UInt32? = nil, geoNet: Int? = nil, latencyNet: Int? = nil) {
        self.record = record
        self.asn = asn
        self.geoNet = geoNet
        self.latencyNet = latencyNet
    }
}

/// Turns location facts into a `LocationClass` for one name; also explains the choice.
public struct Classifier: Sendable {
    let model: SteeringModel
    let name: SteeredName

    public init(model: SteeringModel, name: SteeredName) {
        self.model = model
        self.name = name
    }

    /// The class and, for `explain`, what decided it.
    public func classify(_ f: LocationFacts) -> (LocationClass, [String]) {
        var why: [String] = []
        var order = name.pools
        if let geo = name.geo, name.has(.geo) {
            var listed: [Int]? = nil
            if let n = f.geoNet {
                listed = geo.nets[n].1
                why.append("geo: CIDR map entry \(geo.nets[n].0)")
            } else if let asn = f.asn ?? f.record?.asn, let l = geo.asn[asn] {
                listed = l
                why.append("geo: ASN \(asn)")
            } else if let c = f.record?.country, let s = f.record?.subdivision, let l = geo.subdivision["\(c)-\(s)"] {
                listed = l
                why.append("geo: subdivision \(c)-\(s)")
            } else if let c = f.record?.country, let l = geo.country[c] {
                listed = l
                why.append("geo: country \(c)")
            } else if let c = f.record?.continent, let l = geo.continent[c] {
                listed = l
                why.append("geo: continent \(c)")
            } else if let l = geo.defaultRegions {
                listed = l
                why.append("geo: no rule matched; default regions")
            }
            order = orderPools(listed: listed ?? [], record: f.record, why: &why)
            // With `failover: spread` only the first pool's place matters (the rest share by capacity):
            // keep the rest in configured order so that neighbours with the same first pool merge
            // into one network (a larger ECS scope). A latency step still needs the full order.
            if name.has(.failover) && name.spread && !name.has(.latency), order.count > 2 {
                order = [order[0]] + name.pools.filter { $0 != order[0] && order.contains($0) }
            }
        }
        var rtt: [Double] = []
        if let lat = name.latency, name.has(.latency) {
            var row = lat.defaultRTT
            if let n = f.latencyNet {
                row = lat.nets[n].1
                why.append("latency: CIDR map entry \(lat.nets[n].0)")
            } else if let c = f.record?.country, let r = lat.country[c] {
                row = r
                why.append("latency: country \(c)")
            } else if let c = f.record?.continent, let r = lat.continent[c] {
                row = r
                why.append("latency: continent \(c)")
            } else {
                why.append("latency: default RTTs")
            }
            rtt = order.map { p in
                let region = model.pools[p].region
                if let ms = row[region] { return ms }
                // Unknown: estimate from distance (light in fibre, ~100 km per ms round trip), else last.
                if let d = distanceKm(f.record, model.regions[region]) { return 5 + d / 100 }
                return .infinity
            }
        }
        return (LocationClass(order: order, rtt: rtt), why)
    }

    /// Pools whose region is listed come first, in list order; the others follow by (biased)
    /// distance from the client when its coordinates are known, else in configured order.
    func orderPools(listed: [Int], record: GeoRecord?, why: inout [String]) -> [Int] {
        var rank: [Int: Int] = [:]
        for (i, r) in listed.enumerated() where rank[r] == nil { rank[r] = i }
        let first = name.pools.filter { rank[model.pools[$0].region] != nil }
            .sorted { rank[model.pools[$0].region]! < rank[model.pools[$1].region]! }
        var rest = name.pools.filter { rank[model.pools[$0].region] == nil }
        if record?.latitude != nil, record?.longitude != nil {
            let keyed = rest.map { p -> (Int, Double) in
                let region = model.regions[model.pools[p].region]
                return (p, biased(distanceKm(record, region) ?? .infinity, bias: region.bias))
            }
            rest = keyed.enumerated().sorted { ($0.element.1, $0.offset) < ($1.element.1, $1.offset) }.map(\.element.0)
            if listed.isEmpty {
                let coords = String(format: "%.2f, %.2f", record!.latitude!, record!.longitude!)
                why.append("geo: no rule matched; nearest regions from \(coords)")
            }
        }
        return first + rest
    }

    /// Route 53's geoproximity bias: d × (1 − b/100) for b > 0, d / (1 + b/100) for b < 0.
    func biased(_ d: Double, bias: Double) -> Double {
        if bias > 0 { return d * (1 - bias / 100) }
        if bias < 0 { return d / (1 + bias / 100) }
        return d
    }

    func distanceKm(_ record: GeoRecord?, _ region: Region) -> Double? {
        guard let lat1 = record?.latitude, let lon1 = record?.longitude, let lat2 = region.latitude,
            let lon2 = region.longitude
        else { return nil }
        return greatCircleKm(lat1, lon1, lat2, lon2)
    }
}

/// Haversine distance on a sphere of the Earth's mean radius.
public func greatCircleKm(_ lat1: Double, _ lon1: Double, _ lat2: Double, _ lon2: Double) -> Double {
    let r = 6371.0088
    let p1 = lat1 * .pi / 180, p2 = lat2 * .pi / 180
    let dp = p2 - p1, dl = (lon2 - lon1) * .pi / 180
    let a = sin(dp / 2) * sin(dp / 2) + cos(p1) * cos(p2) * sin(dl / 2) * sin(dl / 2)
    return 2 * r * asin(min(1, sqrt(a)))
}

/// A binary trie over one address family whose leaves are location classes, merged so that a
/// leaf is the largest network with one class (gdnsd's semantics for the ECS scope): the depth
/// of the leaf a client reaches is the answer's scope prefix.
///
/// Queries do not walk the binary trie bit by bit: `compile()` expands it into a multibit table
/// (controlled prefix expansion) whose first level takes 4–16 bits and every further level 4, so
/// that a client costs two or three memory reads instead of twenty (each of them a cache miss
/// when clients come from everywhere). Every table entry keeps the depth of the binary leaf it
/// expands, so the scope stays the merged network's length.
public struct LocationTrie: Sendable {
    /// Two child codes per node; a code with the top bit set is a leaf holding a class index.
    /// Emptied by `compile()` once the table holds the same map.
    var nodes: [UInt32] = []
    var root: UInt32 = LocationTrie.leafBit
    @usableFromInline static let leafBit: UInt32 = 1 << 31
    /// The multibit table (nil before `compile()` or when it kept the binary trie).
    var table: LocationTable?
    /// Binary nodes of the trie as built (before `compile()`).
    public private(set) var nodeCount = 0
    /// Whether lookups read the table.
    public var compiled: Bool { table != nil }
    @usableFromInline static let classBits: UInt32 = 23
    @usableFromInline static let classMask: UInt32 = 1 << classBits - 1

    /// The class of an address (IPv4 in the top 32 bits of `high`) and the depth it was decided at.
    @inline(__always)
    public func locate(high: UInt64, low: UInt64) -> (cls: Int, depth: Int) {
        guard let table else { return walk(high: high, low: low) }
        return table.probe.locate(high: high, low: low)
    }

    /// The same answer from the binary trie, one bit per step (before `compile()`, or when classes
    /// do not fit a table entry).
    public func walk(high: UInt64, low: UInt64) -> (cls: Int, depth: Int) {
        nodes.withUnsafeBufferPointer { n in
            var code = root
            var depth = 0
            // The address as one 128-bit stream, shifted left one bit per level.
            var h = high, l = low
            while code & Self.leafBit == 0 {
                code = n[Int(code) &* 2 &+ Int(truncatingIfNeeded: h >> 63)]
                h = h << 1 | l >> 63
                l <<= 1
                depth &+= 1
            }
            return (Int(code & ~Self.leafBit), depth)
        }
    }

    /// Expands the binary trie into the table and drops the nodes. Keeps the binary trie when a class
    /// index does not fit an entry (more than 8 million classes).
    public mutating func compile(classes: Int) {
        nodeCount = nodes.count / 2
        guard classes <= Int(Self.classMask) + 1 else { return }
        // The first level no larger than the trie (at most 65,536 entries, 256 KiB).
        var first = 4
        while first < 16 && 1 << (first + 4) <= nodeCount { first += 4 }
        var t = [UInt32](repeating: 0, count: 1 << first)
        let nodes = self.nodes
        // Fills entries [index << bits, (index + 1) << bits) of the block at `block` from the binary
        // node `code` at `depth`, with `bits` of the level still to split on.
        func expand(_ code: UInt32, depth: Int, block: Int, index: Int, bits: Int) {
            if code & Self.leafBit != 0 {
                let entry = Self.leafBit | UInt32(depth) << Self.classBits | (code & ~Self.leafBit)
                for i in (index << bits)..<((index + 1) << bits) { t[block + i] = entry }
            } else if bits == 0 {
                let next = t.count
                t.append(contentsOf: repeatElement(0, count: 16))
                t[block + index] = UInt32(next)
                expand(code, depth: depth, block: next, index: 0, bits: 4)
            } else {
                expand(nodes[Int(code) * 2], depth: depth + 1, block: block, index: index << 1, bits: bits - 1)
                expand(nodes[Int(code) * 2 + 1], depth: depth + 1, block: block, index: index << 1 | 1, bits: bits - 1)
            }
        }
        expand(root, depth: 0, block: 0, index: 0, bits: first)
        table = LocationTable(t, firstStride: first)
        self.nodes = []
    }
}

/// A compiled location table: `1 << firstStride` entries, then blocks of 16. An entry with the top
/// bit set is a leaf (depth in bits 23–30, class in bits 0–22); otherwise the index of the block
/// that splits on the next 4 bits. Its memory is allocated once and never moves or changes, so
/// the query path may hold its address (`SteeringTable.prefetch`); tries configured alike share
/// one, freed with the last of them.
public final class LocationTable: @unchecked Sendable {
    let entries: UnsafeMutableBufferPointer<UInt32>
    let firstStride: Int

    init(_ t: [UInt32], firstStride: Int) {
        entries = .allocate(capacity: t.count)
        _ = entries.initialize(from: t)
        self.firstStride = firstStride
    }

    deinit { entries.deallocate() }

    /// Where a lookup of this table starts.
    @inline(__always)
    var probe: LocationProbe { LocationProbe(base: UnsafePointer(entries.baseAddress!), firstStride: firstStride) }
}

/// The first level of one location table, as `SteeringTable.prefetch` reads it: plain values, so
/// reading a list of them takes no references. `@unchecked Sendable`: the address points into an
/// immutable `LocationTable` that the same `SteeringTable` keeps alive.
@usableFromInline
struct LocationProbe: @unchecked Sendable {
    @usableFromInline let base: UnsafePointer<UInt32>?
    @usableFromInline let firstStride: Int

    init(base: UnsafePointer<UInt32>, firstStride: Int) {
        self.base = base
        self.firstStride = firstStride
    }

    /// An unused slot (never read: the counts beside the probes say how many are set).
    init() {
        base = nil
        firstStride = 0
    }

    /// The class of an address (IPv4 in the top 32 bits of `high`) and the depth it was decided at.
    @inlinable @inline(__always)
    func locate(high: UInt64, low: UInt64) -> (cls: Int, depth: Int) {
        let t = base.unsafelyUnwrapped
        var e = t[Int(truncatingIfNeeded: high >> UInt64(truncatingIfNeeded: 64 &- firstStride))]
        var at = firstStride
        while e & LocationTrie.leafBit == 0 {
            // Levels start at multiples of 4: a level's 4 bits never straddle `high` and `low`.
            let word = at < 64 ? high : low
            e = t[Int(e) &+ Int(truncatingIfNeeded: (word << UInt64(truncatingIfNeeded: at & 63)) >> 60)]
            at &+= 4
        }
        return (Int(e & LocationTrie.classMask), Int((e >> LocationTrie.classBits) & 0xFF))
    }

    /// The first-level entry an address reads.
    @inlinable @inline(__always)
    func first(_ high: UInt64) -> UnsafePointer<UInt32> {
        base.unsafelyUnwrapped + Int(truncatingIfNeeded: high >> UInt64(truncatingIfNeeded: 64 &- firstStride))
    }

    /// The entry of the second level an address reads, or nil when the first level holds its leaf.
    /// Reads the first-level entry: meant for when an earlier prefetch has brought it in.
    @inlinable @inline(__always)
    func second(_ high: UInt64) -> UnsafePointer<UInt32>? {
        let e = first(high).pointee
        guard e & LocationTrie.leafBit == 0 else { return nil }
        return base.unsafelyUnwrapped + (Int(e) &+ Int(truncatingIfNeeded: (high << UInt64(truncatingIfNeeded: firstStride)) >> 60))
    }
}

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
                    children.append((-1, -1)); geo.append(-1); latency.append(-1)
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
        let cityRoot = root(city), asnRoot = root(asnDB)
        let v4Start: UInt32? = {
            if family == 6, let city, city.ipVersion == 6, case .node(let n) = city.ipv4Root { return n }
            return nil
        }()
        let maxDepth = family == 4 ? 32 : 128

        func build(_ db: GeoDatabase.Branch, _ asn: GeoDatabase.Branch, _ netsNode: Int, _ geoNet: Int, _ latNet: Int,
                   _ depth: Int) -> UInt32 {
            var geoNet = geoNet, latNet = latNet
            if netsNode >= 0 {
                if nets.geo[netsNode] >= 0 { geoNet = Int(nets.geo[netsNode]) }
                if nets.latency[netsNode] >= 0 { latNet = Int(nets.latency[netsNode]) }
            }
            let netsDone = netsNode < 0 || (nets.children[netsNode].0 < 0 && nets.children[netsNode].1 < 0)
            var dbB = db, asnB = asn
            // IPv4 under an IPv6 database (::/96, ::ffff:0:0/96, 2002::/16) is looked up as IPv4.
            if case .node(let n) = dbB, n == v4Start { dbB = .empty }
            // Once the CIDR maps decide everything the class depends on, the databases no longer matter.
            let geoFixed = !name.has(.geo) || geoNet >= 0
            let latFixed = !name.has(.latency) || latNet >= 0
            if netsDone && geoFixed && latFixed { dbB = .empty; asnB = .empty }
            let dbLeaf: Bool = { if case .node = dbB { return false }; return true }()
            let asnLeaf: Bool = { if case .node = asnB { return false }; return true }()
            if (netsDone && dbLeaf && asnLeaf) || depth == maxDepth {
                var rec: Int? = nil, asnRec: Int? = nil
                if case .record(let r) = dbB { rec = r }
                if case .record(let r) = asnB { asnRec = r }
                return classCode(record: rec, asn: asnRec, geoNet: geoNet >= 0 ? geoNet : nil,
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
