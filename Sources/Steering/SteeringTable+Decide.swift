import Foundation
public import Health

/// Deciding one query: the policy chain, then the pool and endpoint picks.
extension SteeringTable {
    /// Decides the answer to a query for name `n` of address family `family` (4 for A, 6 for AAAA).
    /// `client` is the ECS address when present, else the source address (IPv4 in the top 32 bits
    /// of `high`). `random` is fresh per query; a sticky name ignores it.
    public func decide<T: DecisionTrace>(
        name n: Int, family: Int, clientFamily: Int, high: UInt64, low: UInt64,
        health: HealthView, now: Double, random: UInt64, trace: inout T
    ) -> Decision {
        decide(
            name: n, family: family, clientFamily: clientFamily, high: high, low: low, health: health.facts, now: now,
            random: random, trace: &trace)
    }

    // The query path's version is compiled here without the trace (callgrind showed the generic one
    // called from Server, with every `note` a witness-table call).
    @_specialize(exported:true,where T == NoTrace)
    public func decide<T: DecisionTrace>(
        name n: Int, family: Int, clientFamily: Int, high: UInt64, low: UInt64,
        health: HealthFacts, now: Double, random: UInt64, trace: inout T,
        memo: DecisionMemo? = nil
    ) -> Decision {
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
        return decide(
            c, name: n, class: cls, depth: depth, family: family, clientFamily: clientFamily, high: high,
            low: low, health: health, now: now, random: random, trace: &trace)
    }

    /// Everything after locating the client: its class `cls`, found at `depth` bits.
    @_specialize(where T == NoTrace)
    func decide<T: DecisionTrace>(
        _ c: CompiledName, name n: Int, class cls: Int, depth: Int, family: Int,
        clientFamily: Int, high: UInt64, low: UInt64, health: HealthFacts, now: Double,
        random: UInt64, trace: inout T
    ) -> Decision {
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
                    sorted[k] = order[i]
                    sortedRTT[k] = rtt[i]
                    k += 1
                }
            }
            order = sorted
            rtt = sortedRTT
            trace.note(
                "latency order (hysteresis \(c.hysteresis) ms): "
                    + (0..<count).map { i -> String in
                        let p = Int(order[i])
                        let extra = health.poolExtraRTT[p]
                        return "\(model.pools[p].name) \(rtt[i]) ms"
                            + (extra > 0 ? " (\(extra) ms of it live excess)" : "")
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
                trace.note(
                    "pool \(model.pools[p].name): \(health.poolReason[p])"
                        + (a > 0 && a < 1 ? ", slow start at \(Int(a * 100))%" : "") + (a == 0 ? " — dropped" : ""))
            }
        }

        // 5. Choose the pool.
        var chosen = -1
        if c.useFailover && !c.spread || !(c.useFailover || c.useWeighted) {
            var u = unit(mix(seed ^ 0xA5A5_5A5A_0F0F_F0F0))
            for i in 0..<count where avail[i] > 0 {
                if avail[i] >= 1 {
                    chosen = i
                    break
                }
                d.repeatable = false  // a ramping pool takes a random part of its clients
                if u < avail[i] {
                    chosen = i
                    break
                }
                u = unit(mix(seed &+ UInt64(i) &* 0x9E37_79B9_7F4A_7C15))
            }
            if chosen >= 0 && c.useFailover {
                trace.note("failover: first pool up is \(model.pools[Int(order[chosen])].name)")
            }
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
        trace.note(
            "\(c.useWeighted ? "weighted: " : "")answer: "
                + d.endpoints.map { model.endpoints[$0].name }.joined(separator: ", ")
                + " (pool \(model.pools[p].name), region \(model.regions[model.pools[p].region].name))")
        return d
    }

    /// The pool by shares: all to the first pool (failover with spread) or by pool weight. A pool
    /// that is down (or ramping) keeps only its available part; the rest goes to the *other* pools
    /// in proportion to their available capacity (never back to itself while it ramps).
    @_specialize(where T == NoTrace)
    func spreadPick<T: DecisionTrace>(
        _ c: CompiledName, order: InlineArray<16, Int16>, avail: InlineArray<16, Double>,
        count: Int, health: HealthFacts, seed: UInt64, trace: inout T
    ) -> Int {
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
        trace.note(
            "pool shares: "
                + (0..<count).map {
                    "\(model.pools[Int(order[$0])].name) \(String(format: "%.1f", eff[$0] * 100))%"
                }.joined(separator: ", "))
        var chosen = -1
        var best = Double.infinity
        for i in 0..<count where eff[i] > 0 {
            // Rendezvous hashing: a client (sticky) keeps its pool unless shares move.
            let key = -log(unit(mix(seed ^ UInt64(order[i] + 1) &* 0xC2B2_AE3D_27D4_EB4F))) / eff[i]
            if key < best {
                best = key
                chosen = i
            }
        }
        return chosen
    }

    /// The endpoints of the chosen pool: weighted sampling without replacement (Efraimidis–Spirakis)
    /// over effective weights, a down endpoint's share going to the others by capacity; without
    /// `weighted`, every endpoint that is up.
    func pickEndpoints(
        _ c: CompiledName, pool p: Int, family: Int, health: HealthFacts, now: Double, seed: UInt64,
        sticky: Bool, into d: inout Decision
    ) {
        let first = Int(poolFirst[p])
        let end = first + Int(poolCount[p])
        let window = poolSlowStart[p]
        var isCNAME = false
        for k in first..<end where endpointFamily[Int(poolEndpoints[k])] == 0 { isCNAME = true }
        let want = isCNAME ? 1 : (c.useWeighted ? (c.answers == 0 ? Self.maxAnswers : c.answers) : Self.maxAnswers)
        if c.useWeighted || isCNAME {
            if !sticky { d.repeatable = false }
            var keys = InlineArray<8, Double>(repeating: .infinity)
            var total = 0.0
            var capacity = 0.0
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
                while j > 0 && keys[j - 1] > key {
                    keys[j] = keys[j - 1]
                    d.picks[j] = d.picks[j - 1]
                    j -= 1
                }
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
