import Foundation
import Geo

/// Receives the steps of a decision, for `lodestar explain` and the admin API. The query path uses
/// `NoTrace`, whose calls compile away.
package protocol DecisionTrace {
    mutating func note(_ line: @autoclosure () -> String)
}

package struct NoTrace: DecisionTrace {
    package init() {}
    @inline(__always) package mutating func note(_ line: @autoclosure () -> String) {}
}

package struct TextTrace: DecisionTrace {
    package var lines: [String] = []
    package init() {}
    package mutating func note(_ line: @autoclosure () -> String) { lines.append(line()) }
}

/// The outcome of one decision.
package struct Decision: Sendable {
    package enum Outcome: Sendable, Equatable {
        /// Answer with `picks`.
        case answer
        /// Nothing is up: answer with every configured endpoint of the family.
        case failOpen
        /// Answer from the zone file (the all-down mode, or no endpoint of the queried family).
        case zone
        case servfail
    }

    package var outcome: Outcome = .answer
    /// Endpoint indices to answer with, best first.
    package var picks = InlineArray<8, Int32>(repeating: -1)
    package var count = 0
    package var pool = -1
    /// RFC 7871 scope prefix: the depth of the location network, or the sticky prefix; 0 when the
    /// answer does not depend on the client.
    package var scope = 0
    package var ttl: UInt32 = 0

    package init() {}

    package var endpoints: [Int] { (0..<count).map { Int(picks[$0]) } }
}

/// One name ready for queries: its tries and location classes.
package struct CompiledName: Sendable {
    package let config: SteeredName
    package let v4: LocationTrie
    package let v6: LocationTrie
    package let classes: [LocationClass]
    /// The class used when the answer does not depend on the client.
    package let defaultClass: Int
    /// Geo or latency in the chain: the answer depends on where the client is.
    package let locationDependent: Bool
    /// For each pool of the name, whether it holds endpoints usable for IPv4 / IPv6 answers.
    let poolHas4: [Bool]
    let poolHas6: [Bool]
}

/// The compiled steering config: what a snapshot holds. Immutable.
package final class SteeringTable: Sendable {
    package let model: SteeringModel
    package let names: [CompiledName]
    package let city: GeoDatabase?
    package let asn: GeoDatabase?
    /// Open-addressing table over lower-case wire names → index into `names`.
    let slots: [Int32]
    let mask: Int

    /// Most pools one name may use (the decision keeps them on the stack).
    package static let maxPoolsPerName = 16
    /// Most endpoints one answer may carry when picking (`answers`).
    package static let maxAnswers = 8

    /// Compiles the model; walks the databases once per distinct geo/latency configuration.
    package init(model: SteeringModel, city: GeoDatabase?, asn: GeoDatabase?) {
        self.model = model
        self.city = city
        self.asn = asn
        var compiled: [CompiledName] = []
        for n in model.names {
            let classifier = Classifier(model: model, name: n)
            var builder = LocationTrieBuilder(classifier: classifier, city: city, asn: asn)
            let dependent = n.has(.geo) || n.has(.latency)
            let v4 = dependent ? builder.build(family: 4) : LocationTrie()
            let v6 = dependent ? builder.build(family: 6) : LocationTrie()
            var classes = builder.classes
            // The location-free class: what a client with no known location gets.
            let (plain, _) = classifier.classify(LocationFacts())
            var defaultClass = classes.firstIndex(of: plain) ?? -1
            if defaultClass < 0 { defaultClass = classes.count; classes.append(plain) }
            var v4t = v4, v6t = v6
            if !dependent {
                v4t.root = UInt32(defaultClass) | LocationTrie.leafBit
                v6t.root = v4t.root
            }
            let has4 = model.pools.map { p in p.endpoints.contains { [0, 4].contains(model.endpoints[$0].target.family) } }
            let has6 = model.pools.map { p in p.endpoints.contains { [0, 6].contains(model.endpoints[$0].target.family) } }
            compiled.append(CompiledName(config: n, v4: v4t, v6: v6t, classes: classes, defaultClass: defaultClass,
                                         locationDependent: dependent, poolHas4: has4, poolHas6: has6))
        }
        names = compiled
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
    package func find(_ name: UnsafeRawBufferPointer) -> Int {
        var h = Self.hash(name) & mask
        while true {
            let i = Int(slots[h])
            if i < 0 { return -1 }
            let equal = names[i].config.wire.withUnsafeBytes { w -> Bool in
                guard w.count == name.count else { return false }
                for k in 0..<w.count {
                    let a = w[k], b = name[k]
                    if a != b && a != b &+ ((b &- 65) < 26 ? 32 : 0) { return false }
                }
                return true
            }
            if equal { return i }
            h = (h + 1) & mask
        }
    }

    /// Decides the answer to a query for name `n` of address family `family` (4 for A, 6 for AAAA).
    /// `client` is the ECS address when present, else the source address (IPv4 in the top 32 bits
    /// of `high`). `random` is fresh per query; a sticky name ignores it.
    package func decide<T: DecisionTrace>(name n: Int, family: Int, clientFamily: Int, high: UInt64, low: UInt64,
                                          health: HealthView, now: Double, random: UInt64, trace: inout T) -> Decision {
        let c = names[n]
        let cfg = c.config
        var d = Decision()
        // 1. Where the client is.
        var cls = c.defaultClass
        var depth = 0
        if c.locationDependent && (clientFamily == 4 || clientFamily == 6) {
            (cls, depth) = clientFamily == 4 ? c.v4.locate(high: high, low: low) : c.v6.locate(high: high, low: low)
            trace.note("location class \(cls): network of \(depth) bits")
        }
        let lc = c.classes[cls]
        var seed = random
        if let sticky = cfg.sticky, clientFamily == 4 || clientFamily == 6 {
            let len = clientFamily == 4 ? sticky.v4 : sticky.v6
            let p = Prefix(family: clientFamily, high: high, low: low, length: len)
            seed = mix(p.high ^ mix(p.low ^ UInt64(n) &* 0x9E37_79B9_7F4A_7C15))
            trace.note("sticky: hashing the client's /\(len)")
            depth = max(depth, len)
        }
        d.scope = (c.locationDependent || cfg.sticky != nil) ? depth : 0
        d.ttl = degraded(c, health: health, now: now) ? cfg.ttlLow : cfg.ttlHigh

        // 2. Candidate pools in the order of the location steps, keeping those with endpoints of this family.
        var order = InlineArray<16, Int16>(repeating: -1)
        var rtt = InlineArray<16, Double>(repeating: 0)
        var count = 0
        for (i, p) in lc.order.enumerated() where count < Self.maxPoolsPerName {
            let usable = family == 4 ? c.poolHas4[p] : c.poolHas6[p]
            if !usable {
                trace.note("pool \(model.pools[p].name): no endpoint for this type, skipped")
                continue
            }
            order[count] = Int16(p)
            rtt[count] = lc.rtt.isEmpty ? 0 : lc.rtt[i]
            count += 1
        }
        guard count > 0 else {
            trace.note("no pool has an endpoint for this type: answer from the zone")
            d.outcome = .zone
            return d
        }
        trace.note("order: " + (0..<count).map { model.pools[Int(order[$0])].name }.joined(separator: ", "))

        // 3. Latency: lowest expected RTT first; RTTs within the hysteresis of the best keep their order.
        if cfg.has(.latency), let lat = cfg.latency, count > 1 {
            var sorted = InlineArray<16, Int16>(repeating: -1)
            var sortedRTT = InlineArray<16, Double>(repeating: 0)
            var taken = InlineArray<16, Bool>(repeating: false)
            var k = 0
            while k < count {
                var best = Double.infinity
                for i in 0..<count where !taken[i] && rtt[i] < best { best = rtt[i] }
                for i in 0..<count where !taken[i] && (rtt[i] <= best + lat.hysteresis || best == .infinity) {
                    taken[i] = true
                    sorted[k] = order[i]; sortedRTT[k] = rtt[i]; k += 1
                }
            }
            order = sorted
            rtt = sortedRTT
            trace.note("latency order (hysteresis \(lat.hysteresis) ms): "
                + (0..<count).map { "\(model.pools[Int(order[$0])].name) \(rtt[$0]) ms" }.joined(separator: ", "))
        }

        // 4. Health: each pool's availability (0 down … 1 up, ramping in slow start).
        let useHealth = cfg.has(.health)
        var avail = InlineArray<16, Double>(repeating: 1)
        if useHealth {
            for i in 0..<count {
                let p = Int(order[i])
                let pool = model.pools[p]
                var a = health.factor(pool: p, window: pool.slowStart, now: now)
                if a > 0 {
                    var any = false
                    for e in pool.endpoints where usable(e, family) && health.endpoints[e].up { any = true; break }
                    if !any { a = 0 }
                }
                avail[i] = a
                trace.note("pool \(pool.name): \(health.pools[p].reason)" + (a > 0 && a < 1 ? ", slow start at \(Int(a * 100))%" : "")
                    + (a == 0 ? " — dropped" : ""))
            }
        }

        // 5. Choose the pool.
        var chosen = -1
        var u = unit(mix(seed ^ 0xA5A5_5A5A_0F0F_F0F0))
        if cfg.has(.failover) && !cfg.spread {
            for i in 0..<count where avail[i] > 0 {
                if avail[i] >= 1 || u < avail[i] { chosen = i; break }
                u = unit(mix(seed &+ UInt64(i) &* 0x9E37_79B9_7F4A_7C15))
            }
            if chosen >= 0 { trace.note("failover: first pool up is \(model.pools[Int(order[chosen])].name)") }
        } else if cfg.has(.failover) || cfg.has(.weighted) {
            // Nominal shares: all to the first pool (failover with spread) or by pool weight. A pool
            // that is down (or ramping) keeps only its available part; the rest is spread over the
            // others in proportion to their capacity.
            var share = InlineArray<16, Double>(repeating: 0)
            var total = 0.0
            for i in 0..<count {
                share[i] = cfg.has(.failover) ? (i == 0 ? 1 : 0) : max(0, health.pools[Int(order[i])].weight)
                total += share[i]
            }
            var eff = InlineArray<16, Double>(repeating: 0)
            if total > 0 {
                var capacity = 0.0
                for i in 0..<count {
                    share[i] /= total
                    capacity += model.pools[Int(order[i])].capacity * avail[i]
                }
                for i in 0..<count { eff[i] = share[i] * avail[i] }
                // Each pool's lost share goes to the *other* pools by available capacity (a pool in slow
                // start must not win back what it is ramping out of).
                for i in 0..<count where share[i] * (1 - avail[i]) > 0 {
                    let others = capacity - model.pools[Int(order[i])].capacity * avail[i]
                    guard others > 0 else { continue }
                    let lost = share[i] * (1 - avail[i])
                    for j in 0..<count where j != i {
                        eff[j] += lost * model.pools[Int(order[j])].capacity * avail[j] / others
                    }
                }
                trace.note("pool shares: " + (0..<count).map {
                    "\(model.pools[Int(order[$0])].name) \(String(format: "%.1f", eff[$0] * 100))%"
                }.joined(separator: ", "))
                var best = Double.infinity
                for i in 0..<count where eff[i] > 0 {
                    // Rendezvous hashing: a client (sticky) keeps its pool unless shares move.
                    let key = -log(unit(mix(seed ^ UInt64(order[i] + 1) &* 0xC2B2_AE3D_27D4_EB4F))) / eff[i]
                    if key < best { best = key; chosen = i }
                }
            }
        } else {
            for i in 0..<count where avail[i] > 0 {
                if avail[i] >= 1 || u < avail[i] { chosen = i; break }
                u = unit(mix(seed &+ UInt64(i) &* 0x9E37_79B9_7F4A_7C15))
            }
        }

        guard chosen >= 0 else {
            trace.note("all pools down: \(cfg.allDown.rawValue)")
            switch cfg.allDown {
            case .failOpen: d.outcome = .failOpen
            case .lastResort: d.outcome = .zone
            case .servfail: d.outcome = .servfail
            }
            d.ttl = cfg.ttlLow
            return d
        }
        let p = Int(order[chosen])
        d.pool = p
        let pool = model.pools[p]

        // 6. Endpoints of the pool.
        let isCNAME = pool.endpoints.contains { model.endpoints[$0].target.family == 0 }
        let want = isCNAME ? 1 : (cfg.has(.weighted) ? (cfg.answers == 0 ? Self.maxAnswers : cfg.answers) : Self.maxAnswers)
        if cfg.has(.weighted) || isCNAME {
            // Weighted sampling without replacement (Efraimidis–Spirakis) over effective weights; a
            // down endpoint's share spreads by capacity, as for pools.
            var keys = InlineArray<8, Double>(repeating: .infinity)
            var total = 0.0, capacity = 0.0
            for e in pool.endpoints where usable(e, family) {
                let f = useHealth ? health.factor(endpoint: e, window: pool.slowStart, now: now) : 1
                total += max(0, health.endpoints[e].weight)
                capacity += model.endpoints[e].capacity * f
            }
            for e in pool.endpoints where usable(e, family) {
                let f = useHealth ? health.factor(endpoint: e, window: pool.slowStart, now: now) : 1
                var w = total > 0 ? max(0, health.endpoints[e].weight) / total * f : 0
                // The shares other endpoints lose come here by capacity (never an endpoint's own).
                let mine = model.endpoints[e].capacity * f
                if mine > 0 && total > 0 {
                    for o in pool.endpoints where o != e && usable(o, family) {
                        let fo = useHealth ? health.factor(endpoint: o, window: pool.slowStart, now: now) : 1
                        let lost = max(0, health.endpoints[o].weight) / total * (1 - fo)
                        let others = capacity - model.endpoints[o].capacity * fo
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
            trace.note("weighted: picked \(d.count) of \(pool.endpoints.filter { usable($0, family) }.count) endpoints")
        } else {
            for e in pool.endpoints where usable(e, family) && d.count < want {
                let f = useHealth ? health.factor(endpoint: e, window: pool.slowStart, now: now) : 1
                if f >= 1 || (f > 0 && unit(mix(seed ^ UInt64(e) &* 0x27D4_EB2F_1656_67C5)) < f) {
                    d.picks[d.count] = Int32(e)
                    d.count += 1
                }
            }
        }
        if d.count == 0 {
            // The pool passed its threshold with none of this family up: its endpoints, fail open.
            for e in pool.endpoints where usable(e, family) && d.count < want {
                d.picks[d.count] = Int32(e)
                d.count += 1
            }
        }
        trace.note("answer: " + d.endpoints.map { model.endpoints[$0].name }.joined(separator: ", ")
            + " (pool \(pool.name), region \(model.regions[pool.region].name))")
        return d
    }

    @inline(__always)
    func usable(_ e: Int, _ family: Int) -> Bool {
        let f = model.endpoints[e].target.family
        return f == 0 || f == family
    }

    /// Whether anything the name depends on is down or ramping: answers then use the low TTL.
    func degraded(_ c: CompiledName, health: HealthView, now: Double) -> Bool {
        guard c.config.has(.health) else { return false }
        for p in c.config.pools {
            let pool = model.pools[p]
            if health.factor(pool: p, window: pool.slowStart, now: now) < 1 { return true }
            for e in pool.endpoints where health.factor(endpoint: e, window: pool.slowStart, now: now) < 1 { return true }
        }
        return false
    }
}

/// SplitMix64's finaliser.
@inline(__always)
package func mix(_ x: UInt64) -> UInt64 {
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
