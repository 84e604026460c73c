public import CLodestarSys
import Foundation
public import Geo

/// The compiled steering config: what a snapshot holds. Immutable.
public final class SteeringTable: Sendable {
    public let model: SteeringModel
    public let names: [CompiledName]
    /// The databases the location tries were compiled from (not kept open: `explain` reopens them).
    public let geo: GeoFiles
    /// The location tries built for this table, by what they depend on: a reload takes them
    /// instead of compiling again when neither the databases nor that configuration changed.
    let built: [CompiledLocation]
    /// How many sets of location tries this table compiled (the others it took from its previous).
    public let mapsCompiled: Int
    /// Open-addressing table over lower-case wire names → index into `names`.
    let slots: [Int32]
    let mask: Int
    /// The names' lower-case wire forms, back to back.
    let wireBytes: [UInt8]
    let wireStart: [Int32]
    /// Pools and endpoints as flat arrays for the query path.
    let poolCapacity: [Double]
    let poolSlowStart: [Double]
    let poolFirst: [Int32]
    let poolCount: [Int32]
    /// Endpoint indices of every pool, pool after pool.
    let poolEndpoints: [Int32]
    public let endpointFamily: [UInt8]
    let endpointCapacity: [Double]
    /// Pre-encoded RDATA (4 or 16 octets, or a wire name for a CNAME) of every endpoint.
    public let rdata: [UInt8]
    public let rdataStart: [Int32]
    public let rdataLength: [Int32]

    /// Per name, the query types it answers: bit 0 A, bit 1 AAAA (read per query without taking a
    /// reference to the name).
    public let answerTypes: [UInt8]

    /// The first levels of the distinct location tables (names configured alike share one), at
    /// most `maxProbes` per family, for `prefetch`.
    /// (Inline and of plain values: reading them on the query path takes no reference.)
    @usableFromInline let probes4: InlineArray<4, LocationProbe>
    @usableFromInline let probes6: InlineArray<4, LocationProbe>
    @usableFromInline let probeCount4: Int
    @usableFromInline let probeCount6: Int
    /// Per family, whether every location-dependent name reads one and the same compiled table
    /// of it (`locateShared`).
    @usableFromInline let shared4: Bool
    @usableFromInline let shared6: Bool
    static let maxProbes = 4

    /// Most pools one name may use (the decision keeps them on the stack).
    public static let maxPoolsPerName = 16
    /// Most endpoints one answer may carry when picking (`answers`).
    public static let maxAnswers = 8

    /// Compiles the model from databases opened for it (tests, `check`).
    public convenience init(model: SteeringModel, city: GeoDatabase?, asn: GeoDatabase?) {
        self.init(model: model, sources: .opened(city: city.map(GeoInput.init), asn: asn.map(GeoInput.init)))
    }

    /// Whether `previous` holds tries for every location-dependent name of `model`, compiled from
    /// the files as they are now: then a reload need not open the databases at all.
    public static func canReuse(_ previous: SteeringTable, for model: SteeringModel, files now: GeoFiles) -> Bool {
        guard previous.geo.sameFiles(now) else { return false }
        return model.names.allSatisfy { n in
            guard n.has(.geo) || n.has(.latency) else { return true }
            let signature = LocationSignature(n, model: model)
            return previous.built.contains { $0.signature == signature }
        }
    }

    /// Compiles the model. A location-dependent name is compiled from the opened databases, once
    /// for all names configured alike, unless `previous` holds its tries built from the same
    /// files (compared by identity) and the same configuration.
    public init(model: SteeringModel, sources: GeoSources, previous: SteeringTable? = nil) {
        self.model = model
        let files: GeoFiles
        let inputs: (city: GeoInput?, asn: GeoInput?)
        switch sources {
        case .opened(let city, let asn):
            files = GeoFiles(city: city?.file, asn: asn?.file)
            inputs = (city, asn)
        case .unchanged:
            files = previous?.geo ?? GeoFiles()
            inputs = (nil, nil)
        }
        geo = files
        let reusable = previous.flatMap { $0.geo.sameFiles(files) ? $0.built : nil } ?? []
        var compiled: [CompiledName] = []
        var built: [CompiledLocation] = []
        var fresh = 0
        for n in model.names {
            let classifier = Classifier(model: model, name: n)
            let dependent = n.has(.geo) || n.has(.latency)
            var v4 = LocationTrie()
            var v6 = LocationTrie()
            var classes: [LocationClass] = []
            if dependent {
                let signature = LocationSignature(n, model: model)
                if let twin = built.first(where: { $0.signature == signature }) {
                    (v4, v6, classes) = (twin.v4, twin.v6, twin.classes)
                } else if let kept = reusable.first(where: { $0.signature == signature }) {
                    (v4, v6, classes) = (kept.v4, kept.v6, kept.classes)
                    built.append(kept)
                } else {
                    (v4, v6, classes) = LocationTrieBuilder.build(
                        classifier: classifier, city: inputs.city, asn: inputs.asn)
                    built.append(CompiledLocation(signature: signature, v4: v4, v6: v6, classes: classes))
                    fresh += 1
                }
            }
            // The location-free class: what a client with no known location gets.
            let (plain, _) = classifier.classify(LocationFacts())
            var defaultClass = classes.firstIndex(of: plain) ?? -1
            if defaultClass < 0 {
                defaultClass = classes.count
                classes.append(plain)
            }
            if !dependent {
                v4.root = UInt32(defaultClass) | LocationTrie.leafBit
                v6.root = v4.root
            }
            compiled.append(
                CompiledName(
                    config: n, v4: v4, v6: v6, classes: classes, defaultClass: defaultClass,
                    locationDependent: dependent, model: model))
        }
        self.built = built
        mapsCompiled = fresh
        names = compiled
        var seen = Set<ObjectIdentifier>()
        var p4: [LocationProbe] = []
        var p6: [LocationProbe] = []
        var complete = true
        for c in compiled {
            if c.locationDependent && (c.v4.table == nil || c.v6.table == nil) { complete = false }
            if let t = c.v4.table, seen.insert(ObjectIdentifier(t)).inserted {
                if p4.count < Self.maxProbes { p4.append(t.probe) } else { complete = false }
            }
            if let t = c.v6.table, seen.insert(ObjectIdentifier(t)).inserted {
                if p6.count < Self.maxProbes { p6.append(t.probe) } else { complete = false }
            }
        }
        (shared4, shared6) = (complete && p4.count == 1, complete && p6.count == 1)
        var i4 = InlineArray<4, LocationProbe>(repeating: LocationProbe())
        var i6 = i4
        for (i, p) in p4.enumerated() { i4[i] = p }
        for (i, p) in p6.enumerated() { i6[i] = p }
        (probes4, probes6, probeCount4, probeCount6) = (i4, i6, p4.count, p6.count)
        answerTypes = model.names.map { ($0.types.contains(1) ? 1 : 0) | ($0.types.contains(28) ? 2 : 0) }
        var size = 8
        while size < compiled.count * 2 { size <<= 1 }
        var slots = [Int32](repeating: -1, count: size)
        for (i, c) in compiled.enumerated() {
            var h = c.config.wire.withUnsafeBytes { Self.hash($0) } & (size - 1)
            while slots[h] >= 0 { h = (h + 1) & (size - 1) }
            slots[h] = Int32(i)
        }
        self.slots = slots
        self.mask = size - 1
        var bytes: [UInt8] = []
        var wstart: [Int32] = []
        for c in compiled {
            wstart.append(Int32(bytes.count))
            bytes += c.config.wire
        }
        wstart.append(Int32(bytes.count))
        wireBytes = bytes
        wireStart = wstart
        poolCapacity = model.pools.map(\.capacity)
        poolSlowStart = model.pools.map(\.slowStart)
        var first: [Int32] = []
        var count: [Int32] = []
        var list: [Int32] = []
        for p in model.pools {
            first.append(Int32(list.count))
            count.append(Int32(p.endpoints.count))
            list += p.endpoints.map { Int32($0) }
        }
        poolFirst = first
        poolCount = count
        poolEndpoints = list
        endpointFamily = model.endpoints.map { UInt8($0.target.family) }
        endpointCapacity = model.endpoints.map(\.capacity)
        var rd: [UInt8] = []
        var starts: [Int32] = []
        var lengths: [Int32] = []
        for e in model.endpoints {
            let bytes: [UInt8]
            switch e.target {
            case .address(let a): bytes = a
            case .cname(let w): bytes = w
            }
            starts.append(Int32(rd.count))
            lengths.append(Int32(bytes.count))
            rd += bytes
        }
        rdata = rd
        rdataStart = starts
        rdataLength = lengths
    }

    @inline(__always)
    static func hash(_ name: UnsafeRawBufferPointer) -> Int {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in name {
            let c = b &+ ((b &- 65) < 26 ? 32 : 0)
            h = (h ^ UInt64(c)) &* 0x100_0000_01b3
        }
        return Int(truncatingIfNeeded: h)
    }

    /// The index of the load-balanced name `name` (wire form, any case), or -1.
    @inline(__always)
    public func find(_ name: UnsafeRawBufferPointer) -> Int {
        var h = Self.hash(name) & mask
        return wireBytes.withUnsafeBytes { all in
            while true {
                let i = Int(slots[h])
                if i < 0 { return -1 }
                let start = Int(wireStart[i])
                let length = Int(wireStart[i + 1]) - start
                if length == name.count {
                    var k = 0
                    while k < length {
                        let a = all[start + k]
                        let b = name[k]
                        if a != b && a != b &+ ((b &- 65) < 26 ? 32 : 0) { break }
                        k += 1
                    }
                    if k == length { return i }
                }
                h = (h + 1) & mask
            }
        }
    }

    @inline(__always)
    func usable(_ e: Int, _ family: Int) -> Bool {
        let f = Int(endpointFamily[e])
        return f == 0 || f == family
    }

    /// Starts loading the first-level entries of the location tables a client's address reads,
    /// so that `decide`, later in the same query, does not wait on them: with clients from all over
    /// the address space each lookup lands on a cold cache line. The query path calls it as soon
    /// as it knows the client, and `prefetchDeeper` once other work has passed.
    /// The class and network depth of an address in the one location table of its family, when
    /// every load-balanced name that depends on the client shares one (names configured alike do);
    /// nil otherwise. Classes of `Decision.locationClass` are classes of this table then.
    @inlinable @inline(__always)
    public func locateShared(clientFamily: Int, high: UInt64, low: UInt64) -> (cls: Int, depth: Int)? {
        if clientFamily == 4 { return shared4 ? probes4[0].locate(high: high, low: low) : nil }
        if clientFamily == 6 { return shared6 ? probes6[0].locate(high: high, low: low) : nil }
        return nil
    }

    @inlinable @inline(__always)
    public func prefetch(clientFamily: Int, high: UInt64) {
        if clientFamily == 4 {
            for i in 0..<probeCount4 { lodestar_prefetch(probes4[i].first(high)) }
        } else {
            for i in 0..<probeCount6 { lodestar_prefetch(probes6[i].first(high)) }
        }
    }

    /// The next step: reads the first-level entries (there by now) and starts loading the second
    /// level where the first does not hold the leaf.
    @inlinable @inline(__always)
    public func prefetchDeeper(clientFamily: Int, high: UInt64) {
        if clientFamily == 4 {
            for i in 0..<probeCount4 { if let next = probes4[i].second(high) { lodestar_prefetch(next) } }
        } else {
            for i in 0..<probeCount6 { if let next = probes6[i].second(high) { lodestar_prefetch(next) } }
        }
    }
}
