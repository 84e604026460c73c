import CLodestarSys
import Foundation
import Geo

/// Receives the steps of a decision, for `lodestar explain` and the admin API. The query path uses
/// `NoTrace`, whose calls compile away.
public protocol DecisionTrace {
    mutating func note(_ line: @autoclosure () -> String)
}

public struct NoTrace: DecisionTrace {
    public init() {}
    @inline(__always) public mutating func note(_ line: @autoclosure () -> String) {}
}

public struct TextTrace: DecisionTrace {
    public var lines: [String] = []
    public init() {}
    public mutating func note(_ line: @autoclosure () -> String) { lines.append(line()) }
}

/// The outcome of one decision.
public struct Decision: Sendable {
    public enum Outcome: Sendable, Equatable {
        /// Answer with `picks`.
        case answer
        /// Nothing is up: answer with every configured endpoint of the family.
        case failOpen
        /// Answer from the zone file (the all-down mode, or no endpoint of the queried family).
        case zone
        case servfail
    }

    public var outcome: Outcome = .answer
    /// Endpoint indices to answer with, best first.
    public var picks = InlineArray<8, Int32>(repeating: -1)
    public var count = 0
    public var pool = -1
    /// RFC 7871 scope prefix: the depth of the location network, or the sticky prefix; 0 when the
    /// answer does not depend on the client.
    public var scope = 0
    public var ttl: UInt32 = 0
    /// False when the answer drew on this query's randomness (weights, shares, a slow-start ramp):
    /// the same client may get another answer next time. Sticky names draw on the client's subnet
    /// instead, so theirs repeat for every client of the scope.
    public var repeatable = true
    /// Monotonic seconds until which a repeatable answer stays as it is without a health change:
    /// when the last pool of a degraded name settles, the TTL goes back up.
    public var stableUntil = Double.infinity
    /// The client's location class when the decision is an answer that is a function of that class
    /// alone (taken ahead for it, `DecisionMemo`, and the name is location-dependent), else -1:
    /// every client of the class then gets this decision, with `scope` the depth of its own network.
    public var locationClass: Int32 = -1

    public init() {}

    public var endpoints: [Int] { (0..<count).map { Int(picks[$0]) } }
}

/// One name ready for queries: its tries and location classes, and its settings as flat fields
/// (a class, so the query path takes one reference instead of copying arrays and strings).
public final class CompiledName: Sendable {
    public let config: SteeredName
    public let v4: LocationTrie
    public let v6: LocationTrie
    public let classes: [LocationClass]
    /// The class used when the answer does not depend on the client.
    public let defaultClass: Int
    /// Geo or latency in the chain: the answer depends on where the client is.
    public let locationDependent: Bool
    /// Classes flattened: pool order and RTTs, `SteeringTable.maxPoolsPerName` slots per class.
    let classOrder: [Int16]
    let classRTT: [Double]
    let classLength: [UInt8]
    /// Per global pool: whether it holds endpoints usable for IPv4 / IPv6 answers.
    let poolHas4: [Bool]
    let poolHas6: [Bool]
    let pools: [Int32]
    let useHealth: Bool, useLatency: Bool, useFailover: Bool, useWeighted: Bool, spread: Bool
    let allDown: AllDownMode
    let answers: Int
    let stickyV4: Int, stickyV6: Int
    public let ttlHigh: UInt32, ttlLow: UInt32
    let hysteresis: Double

    init(config: SteeredName, v4: LocationTrie, v6: LocationTrie, classes: [LocationClass], defaultClass: Int,
         locationDependent: Bool, model: SteeringModel) {
        self.config = config
        self.v4 = v4
        self.v6 = v6
        self.classes = classes
        self.defaultClass = defaultClass
        self.locationDependent = locationDependent
        let stride = SteeringTable.maxPoolsPerName
        var order = [Int16](repeating: -1, count: classes.count * stride)
        var rtt = [Double](repeating: 0, count: classes.count * stride)
        var length = [UInt8](repeating: 0, count: classes.count)
        for (k, c) in classes.enumerated() {
            length[k] = UInt8(min(stride, c.order.count))
            for (i, p) in c.order.prefix(stride).enumerated() {
                order[k * stride + i] = Int16(p)
                rtt[k * stride + i] = c.rtt.isEmpty ? 0 : c.rtt[i]
            }
        }
        classOrder = order
        classRTT = rtt
        classLength = length
        poolHas4 = model.pools.map { p in p.endpoints.contains { [0, 4].contains(model.endpoints[$0].target.family) } }
        poolHas6 = model.pools.map { p in p.endpoints.contains { [0, 6].contains(model.endpoints[$0].target.family) } }
        pools = config.pools.map { Int32($0) }
        useHealth = config.has(.health)
        useLatency = config.has(.latency)
        useFailover = config.has(.failover)
        useWeighted = config.has(.weighted)
        spread = config.spread
        allDown = config.allDown
        answers = config.answers
        stickyV4 = config.sticky?.v4 ?? -1
        stickyV6 = config.sticky?.v6 ?? -1
        ttlHigh = config.ttlHigh
        ttlLow = config.ttlLow
        hysteresis = config.latency?.hysteresis ?? 0
    }
}

/// The compiled steering config: what a snapshot holds. Immutable.
public final class SteeringTable: Sendable {
    public let model: SteeringModel
    public let names: [CompiledName]
    public let city: GeoDatabase?
    public let asn: GeoDatabase?
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

    /// Compiles the model; walks the databases once per name using them.
    public init(model: SteeringModel, city: GeoDatabase?, asn: GeoDatabase?) {
        self.model = model
        self.city = city
        self.asn = asn
        var compiled: [CompiledName] = []
        // Names whose location steps are configured alike share one walk of the databases.
        var built: [(name: SteeredName, v4: LocationTrie, v6: LocationTrie, classes: [LocationClass])] = []
        func sameLocation(_ a: SteeredName, _ b: SteeredName) -> Bool {
            a.chain == b.chain && a.pools == b.pools && a.spread == b.spread && a.geo == b.geo && a.latency == b.latency
        }
        for n in model.names {
            let classifier = Classifier(model: model, name: n)
            let dependent = n.has(.geo) || n.has(.latency)
            var v4 = LocationTrie(), v6 = LocationTrie()
            var classes: [LocationClass] = []
            if let twin = built.first(where: { sameLocation($0.name, n) }) {
                (v4, v6, classes) = (twin.v4, twin.v6, twin.classes)
            } else if dependent {
                var builder = LocationTrieBuilder(classifier: classifier, city: city, asn: asn)
                v4 = builder.build(family: 4)
                v6 = builder.build(family: 6)
                classes = builder.classes
                built.append((n, v4, v6, classes))
            }
            // The location-free class: what a client with no known location gets.
            let (plain, _) = classifier.classify(LocationFacts())
            var defaultClass = classes.firstIndex(of: plain) ?? -1
            if defaultClass < 0 { defaultClass = classes.count; classes.append(plain) }
            if !dependent {
                v4.root = UInt32(defaultClass) | LocationTrie.leafBit
                v6.root = v4.root
            }
            compiled.append(CompiledName(config: n, v4: v4, v6: v6, classes: classes, defaultClass: defaultClass,
                                         locationDependent: dependent, model: model))
        }
        names = compiled
        var seen = Set<ObjectIdentifier>()
        var p4: [LocationProbe] = [], p6: [LocationProbe] = []
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
        var i4 = InlineArray<4, LocationProbe>(repeating: LocationProbe()), i6 = i4
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
        var bytes: [UInt8] = [], wstart: [Int32] = []
        for c in compiled {
            wstart.append(Int32(bytes.count))
            bytes += c.config.wire
        }
        wstart.append(Int32(bytes.count))
        wireBytes = bytes
        wireStart = wstart
        poolCapacity = model.pools.map(\.capacity)
        poolSlowStart = model.pools.map(\.slowStart)
        var first: [Int32] = [], count: [Int32] = [], list: [Int32] = []
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
        var rd: [UInt8] = [], starts: [Int32] = [], lengths: [Int32] = []
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
                let start = Int(wireStart[i]), length = Int(wireStart[i + 1]) - start
                if length == name.count {
                    var k = 0
                    while k < length {
                        let a = all[start + k], b = name[k]
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

    /// Decides the answer to a query for name `n` of address family `family` (4 for A, 6 for AAAA).
    /// `client` is the ECS address when present, else the source address (IPv4 in the top 32 bits
    /// of `high`). `random` is fresh per query; a sticky name ignores it.
    public func decide<T: DecisionTrace>(name n: Int, family: Int, clientFamily: Int, high: UInt64, low: UInt64,
                                          health: HealthView, now: Double, random: UInt64, trace: inout T) -> Decision {
        decide(name: n, family: family, clientFamily: clientFamily, high: high, low: low, health: health.facts, now: now,
               random: random, trace: &trace)
    }

    // The query path's version is compiled here without the trace (callgrind showed the generic one
    // called from Server, with every `note` a witness-table call).
    @_specialize(exported: true, where T == NoTrace)
    public func decide<T: DecisionTrace>(name n: Int, family: Int, clientFamily: Int, high: UInt64, low: UInt64,
                                          health: HealthFacts, now: Double, random: UInt64, trace: inout T,
                                          memo: DecisionMemo? = nil) -> Decision {
        let c = names[n]
        // 1. Where the client is.
        var cls = c.defaultClass
        var depth = 0
        if c.locationDependent && (clientFamily == 4 || clientFamily == 6) {
            (cls, depth) = clientFamily == 4 ? c.v4.locate(high: high, low: low) : c.v6.locate(high: high, low: low)
            trace.note("location class \(cls): network of \(depth) bits")
        }
        if let memo, var d = memo.decision(name: n, class: cls, family: family, now: now) {
            d.scope = c.locationDependent ? depth : 0
            d.locationClass = c.locationDependent && d.repeatable && d.outcome == .answer ? Int32(cls) : -1
            return d
        }
        return decide(c, name: n, class: cls, depth: depth, family: family, clientFamily: clientFamily, high: high,
                      low: low, health: health, now: now, random: random, trace: &trace)
    }

    /// Everything after locating the client: its class `cls`, found at `depth` bits.
    @_specialize(where T == NoTrace)
    func decide<T: DecisionTrace>(_ c: CompiledName, name n: Int, class cls: Int, depth: Int, family: Int,
                                  clientFamily: Int, high: UInt64, low: UInt64, health: HealthFacts, now: Double,
                                  random: UInt64, trace: inout T) -> Decision {
        var d = Decision()
        var depth = depth
        var seed = random
        let stickyLength = clientFamily == 4 ? c.stickyV4 : (clientFamily == 6 ? c.stickyV6 : -1)
        if stickyLength >= 0 {
            let p = Prefix(family: clientFamily, high: high, low: low, length: stickyLength)
            seed = mix(p.high ^ mix(p.low ^ UInt64(n) &* 0x9E37_79B9_7F4A_7C15))
            trace.note("sticky: hashing the client's /\(stickyLength)")
            depth = max(depth, stickyLength)
        }
        let sticky = stickyLength >= 0
        d.scope = (c.locationDependent || sticky) ? depth : 0
        d.ttl = degraded(c, health: health, now: now, until: &d.stableUntil) ? c.ttlLow : c.ttlHigh

        // 2. Candidate pools in the order of the location steps, keeping those with endpoints of this family.
        var order = InlineArray<16, Int16>(repeating: -1)
        var rtt = InlineArray<16, Double>(repeating: 0)
        var count = 0
        let base = cls * Self.maxPoolsPerName
        for i in 0..<Int(c.classLength[cls]) {
            let p = Int(c.classOrder[base + i])
            let ok = family == 4 ? c.poolHas4[p] : c.poolHas6[p]
            if !ok {
                trace.note("pool \(model.pools[p].name): no endpoint for this type, skipped")
                continue
            }
            order[count] = Int16(p)
            rtt[count] = c.classRTT[base + i]
            if c.useLatency { rtt[count] += health.poolExtraRTT[p] }
            count += 1
        }
        guard count > 0 else {
            trace.note("no pool has an endpoint for this type: answer from the zone")
            d.outcome = .zone
            return d
        }
        trace.note("order: " + (0..<count).map { model.pools[Int(order[$0])].name }.joined(separator: ", "))

        // 3. Latency: lowest expected RTT first; RTTs within the hysteresis of the best keep their order.
        if c.useLatency && count > 1 {
            var sorted = InlineArray<16, Int16>(repeating: -1)
            var sortedRTT = InlineArray<16, Double>(repeating: 0)
            var taken = InlineArray<16, Bool>(repeating: false)
            var k = 0
            while k < count {
                var best = Double.infinity
                for i in 0..<count where !taken[i] && rtt[i] < best { best = rtt[i] }
                for i in 0..<count where !taken[i] && (rtt[i] <= best + c.hysteresis || best == .infinity) {
                    taken[i] = true
                    sorted[k] = order[i]; sortedRTT[k] = rtt[i]; k += 1
                }
            }
            order = sorted
            rtt = sortedRTT
            trace.note("latency order (hysteresis \(c.hysteresis) ms): "
                + (0..<count).map { i -> String in
                    let p = Int(order[i]), extra = health.poolExtraRTT[p]
                    return "\(model.pools[p].name) \(rtt[i]) ms" + (extra > 0 ? " (\(extra) ms of it live excess)" : "")
                }.joined(separator: ", "))
        }

        // 4. Health: each pool's availability (0 down … 1 up, ramping in slow start).
        var avail = InlineArray<16, Double>(repeating: 1)
        if c.useHealth {
            for i in 0..<count {
                let p = Int(order[i])
                var a = health.factor(pool: p, window: poolSlowStart[p], now: now)
                if !(family == 4 ? health.poolUp4[p] : health.poolUp6[p]) { a = 0 }
                avail[i] = a
                trace.note("pool \(model.pools[p].name): \(health.poolReason[p])"
                    + (a > 0 && a < 1 ? ", slow start at \(Int(a * 100))%" : "") + (a == 0 ? " — dropped" : ""))
            }
        }

        // 5. Choose the pool.
        var chosen = -1
        if c.useFailover && !c.spread || !(c.useFailover || c.useWeighted) {
            var u = unit(mix(seed ^ 0xA5A5_5A5A_0F0F_F0F0))
            for i in 0..<count where avail[i] > 0 {
                if avail[i] >= 1 { chosen = i; break }
                d.repeatable = false  // a ramping pool takes a random part of its clients
                if u < avail[i] { chosen = i; break }
                u = unit(mix(seed &+ UInt64(i) &* 0x9E37_79B9_7F4A_7C15))
            }
            if chosen >= 0 && c.useFailover { trace.note("failover: first pool up is \(model.pools[Int(order[chosen])].name)") }
        } else {
            chosen = spreadPick(c, order: order, avail: avail, count: count, health: health, seed: seed, trace: &trace)
            // Shares are drawn at random per query, or per client subnet for a sticky name (as long as no ramp moves them).
            if !sticky || (0..<count).contains(where: { avail[$0] > 0 && avail[$0] < 1 }) { d.repeatable = false }
        }

        guard chosen >= 0 else {
            trace.note("all pools down: \(c.allDown.rawValue)")
            switch c.allDown {
            case .failOpen: d.outcome = .failOpen
            case .lastResort: d.outcome = .zone
            case .servfail: d.outcome = .servfail
            }
            d.ttl = c.ttlLow
            return d
        }
        let p = Int(order[chosen])
        d.pool = p
        pickEndpoints(c, pool: p, family: family, health: health, now: now, seed: seed, sticky: sticky, into: &d)
        trace.note("\(c.useWeighted ? "weighted: " : "")answer: " + d.endpoints.map { model.endpoints[$0].name }.joined(separator: ", ")
            + " (pool \(model.pools[p].name), region \(model.regions[model.pools[p].region].name))")
        return d
    }

    /// The pool by shares: all to the first pool (failover with spread) or by pool weight. A pool
    /// that is down (or ramping) keeps only its available part; the rest goes to the *other* pools
    /// in proportion to their available capacity (never back to itself while it ramps).
    @_specialize(where T == NoTrace)
    func spreadPick<T: DecisionTrace>(_ c: CompiledName, order: InlineArray<16, Int16>, avail: InlineArray<16, Double>,
                                      count: Int, health: HealthFacts, seed: UInt64, trace: inout T) -> Int {
        var share = InlineArray<16, Double>(repeating: 0)
        var total = 0.0
        for i in 0..<count {
            share[i] = c.useFailover ? (i == 0 ? 1 : 0) : max(0, health.poolWeight[Int(order[i])])
            total += share[i]
        }
        guard total > 0 else { return -1 }
        var eff = InlineArray<16, Double>(repeating: 0)
        var capacity = 0.0
        for i in 0..<count {
            share[i] /= total
            capacity += poolCapacity[Int(order[i])] * avail[i]
            eff[i] = share[i] * avail[i]
        }
        for i in 0..<count where share[i] * (1 - avail[i]) > 0 {
            let others = capacity - poolCapacity[Int(order[i])] * avail[i]
            guard others > 0 else { continue }
            let lost = share[i] * (1 - avail[i])
            for j in 0..<count where j != i { eff[j] += lost * poolCapacity[Int(order[j])] * avail[j] / others }
        }
        trace.note("pool shares: " + (0..<count).map {
            "\(model.pools[Int(order[$0])].name) \(String(format: "%.1f", eff[$0] * 100))%"
        }.joined(separator: ", "))
        var chosen = -1
        var best = Double.infinity
        for i in 0..<count where eff[i] > 0 {
            // Rendezvous hashing: a client (sticky) keeps its pool unless shares move.
            let key = -log(unit(mix(seed ^ UInt64(order[i] + 1) &* 0xC2B2_AE3D_27D4_EB4F))) / eff[i]
            if key < best { best = key; chosen = i }
        }
        return chosen
    }

    /// The endpoints of the chosen pool: weighted sampling without replacement (Efraimidis–Spirakis)
    /// over effective weights, a down endpoint's share going to the others by capacity; without
    /// `weighted`, every endpoint that is up.
    func pickEndpoints(_ c: CompiledName, pool p: Int, family: Int, health: HealthFacts, now: Double, seed: UInt64,
                       sticky: Bool, into d: inout Decision) {
        let first = Int(poolFirst[p]), end = first + Int(poolCount[p])
        let window = poolSlowStart[p]
        var isCNAME = false
        for k in first..<end where endpointFamily[Int(poolEndpoints[k])] == 0 { isCNAME = true }
        let want = isCNAME ? 1 : (c.useWeighted ? (c.answers == 0 ? Self.maxAnswers : c.answers) : Self.maxAnswers)
        if c.useWeighted || isCNAME {
            if !sticky { d.repeatable = false }
            var keys = InlineArray<8, Double>(repeating: .infinity)
            var total = 0.0, capacity = 0.0
            for k in first..<end {
                let e = Int(poolEndpoints[k])
                guard usable(e, family) else { continue }
                let f = c.useHealth ? health.factor(endpoint: e, window: window, now: now) : 1
                total += max(0, health.endpointWeight[e])
                capacity += endpointCapacity[e] * f
            }
            for k in first..<end {
                let e = Int(poolEndpoints[k])
                guard usable(e, family) else { continue }
                let f = c.useHealth ? health.factor(endpoint: e, window: window, now: now) : 1
                if f > 0 && f < 1 { d.repeatable = false }
                var w = total > 0 ? max(0, health.endpointWeight[e]) / total * f : 0
                let mine = endpointCapacity[e] * f
                if mine > 0 && total > 0 && c.useHealth {
                    for k2 in first..<end {
                        let o = Int(poolEndpoints[k2])
                        guard o != e, usable(o, family) else { continue }
                        let fo = health.factor(endpoint: o, window: window, now: now)
                        let lost = max(0, health.endpointWeight[o]) / total * (1 - fo)
                        let others = capacity - endpointCapacity[o] * fo
                        if lost > 0 && others > 0 { w += lost * mine / others }
                    }
                }
                guard w > 0 else { continue }
                let key = -log(unit(mix(seed ^ UInt64(e + 1) &* 0x1656_67B1_9E37_79F9))) / w
                // Keep the `want` smallest keys, sorted.
                var j = min(d.count, want)
                if j == want && key >= keys[want - 1] { continue }
                if j == want { j -= 1 } else { d.count += 1 }
                while j > 0 && keys[j - 1] > key { keys[j] = keys[j - 1]; d.picks[j] = d.picks[j - 1]; j -= 1 }
                keys[j] = key
                d.picks[j] = Int32(e)
            }
        } else {
            for k in first..<end where d.count < want {
                let e = Int(poolEndpoints[k])
                guard usable(e, family) else { continue }
                let f = c.useHealth ? health.factor(endpoint: e, window: window, now: now) : 1
                if f > 0 && f < 1 { d.repeatable = false }
                if f >= 1 || (f > 0 && unit(mix(seed ^ UInt64(e) &* 0x27D4_EB2F_1656_67C5)) < f) {
                    d.picks[d.count] = Int32(e)
                    d.count += 1
                }
            }
        }
        if d.count == 0 {
            // The pool passed its threshold with none of this family up: its endpoints, fail open.
            for k in first..<end where d.count < want && usable(Int(poolEndpoints[k]), family) {
                d.picks[d.count] = poolEndpoints[k]
                d.count += 1
            }
        }
    }

    /// Whether anything the name depends on is down or ramping: answers then use the low TTL.
    /// `until` becomes the earliest time one of them settles (none while one is down): the answer
    /// may change then.
    @inline(__always)
    func degraded(_ c: CompiledName, health: HealthFacts, now: Double, until: inout Double) -> Bool {
        guard c.useHealth else { return false }
        var low = false
        for p in c.pools {
            let settled = health.poolSettled[Int(p)]
            if now < settled {
                low = true
                if settled < until { until = settled }
            }
        }
        return low
    }
}

extension SteeringTable {
    /// The decisions of one health state taken ahead (see `DecisionMemo`), for at most `limit`
    /// class-and-family pairs in all (about 5 MiB; a name beyond that decides per query).
    /// `now` is the monotonic clock in seconds.
    public func memo(health: HealthFacts, now: Double, limit: Int = 1 << 16) -> DecisionMemo {
        var base: [Int] = [], validFrom: [Double] = [], decisions: [Decision?] = []
        for (n, c) in names.enumerated() {
            guard c.stickyV4 < 0 && c.stickyV6 < 0, decisions.count + 2 * c.classes.count <= limit else {
                base.append(-1); validFrom.append(.infinity); continue
            }
            // Once every slow-start ramp of the name's pools and endpoints has ended, health factors
            // are 0 or 1 and settle times are past: the decision stays what it is at that moment.
            var from = now
            for p32 in c.pools {
                let p = Int(p32), window = poolSlowStart[p]
                guard window > 0 else { continue }
                if health.poolPassing[p] { from = max(from, health.poolSince[p] + window) }
                for k in Int(poolFirst[p])..<Int(poolFirst[p] + poolCount[p]) {
                    let e = Int(poolEndpoints[k])
                    if health.endpointUp[e] { from = max(from, health.endpointSince[e] + window) }
                }
            }
            base.append(decisions.count)
            validFrom.append(from)
            for cls in 0..<c.classes.count {
                for family in [4, 6] {
                    var trace = NoTrace()
                    let d = decide(c, name: n, class: cls, depth: 0, family: family, clientFamily: 0, high: 0, low: 0,
                                   health: health, now: from, random: 0, trace: &trace)
                    // Only what no query's randomness drew and no later moment changes.
                    decisions.append(d.repeatable && d.stableUntil == .infinity ? d : nil)
                }
            }
        }
        return DecisionMemo(base: base, validFrom: validFrom, decisions: decisions)
    }
}

/// Decisions taken ahead for one health state: for every name whose answer depends only on the
/// client's location class (no weighted or spread pick drawn per query, not sticky), the decision
/// for each class and address family, valid from the moment its pools' slow-start ramps end.
/// A query then only locates the client: the rest of `decide` is a read.
public final class DecisionMemo: Sendable {
    /// Per name: the index of its class 0, IPv4, in `decisions`; -1 when the name is not memoised.
    let base: [Int]
    /// Per name: monotonic seconds from which its memoised decisions hold.
    let validFrom: [Double]
    /// Two per class (IPv4, IPv6); nil where the decision drew on randomness.
    let decisions: [Decision?]

    init(base: [Int], validFrom: [Double], decisions: [Decision?]) {
        self.base = base
        self.validFrom = validFrom
        self.decisions = decisions
    }

    /// Names with decisions taken ahead, and the decisions kept.
    public var names: Int { base.count { $0 >= 0 } }
    public var count: Int { decisions.count { $0 != nil } }

    @inline(__always)
    func decision(name n: Int, class cls: Int, family: Int, now: Double) -> Decision? {
        let b = base[n]
        guard b >= 0, now >= validFrom[n] else { return nil }
        return decisions[b + cls * 2 + (family == 6 ? 1 : 0)]
    }
}

/// SplitMix64's finaliser.
@inline(__always)
public func mix(_ x: UInt64) -> UInt64 {
    var z = x &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

/// A uniform double in (0, 1).
@inline(__always)
func unit(_ x: UInt64) -> Double {
    (Double(x >> 11) + 0.5) * (1.0 / 9_007_199_254_740_992.0)
}
