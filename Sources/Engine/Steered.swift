import CLodestarSys
import DNSWire
import Steering

/// What a query brings to a load-balanced answer: who the client is (the ECS address when the
/// query carries one with a non-zero source prefix, else the source address), and what comes back.
struct SteerContext {
    /// nil when the snapshot has no load-balanced names. Unretained: the snapshot holds it for the
    /// query (and an `Unmanaged` copies as plain bits, where an optional unowned reference went
    /// through generic value witnesses: ~100 instructions per query).
    private(set) var runtime: Unmanaged<SteeringRuntime>?
    private(set) var clientFamily: Int
    private(set) var high: UInt64
    private(set) var low: UInt64
    private(set) var queryID: UInt16
    var fixedRandom: UInt64? = nil
    /// The monotonic clock in nanoseconds as the caller read it for this query, or 0.
    private(set) var now: UInt64 = 0
    /// The client is the query's source address (no ECS with a source prefix): an answer that
    /// depends on the client depends on the source.
    private(set) var fromSource: Bool
    /// The largest scope of any load-balanced answer in the response (RFC 7871 §7.2.1).
    var scope = 0
    /// Load-balanced decisions taken for this response, and whether they would repeat.
    var decisions = 0
    /// Leading bits of the client address the decisions read (their location network, sticky prefix).
    var clientBits = 0
    var repeatable = true
    var stableUntil = Double.infinity
    /// The client's location class when the last decision is a function of it alone, else -1.
    var locationClass: Int32 = -1
    /// What the response counts in the answer counters (counted once the response is done).
    var counted = AnswerCount()

    /// No load-balanced names: nothing to decide.
    init() {
        runtime = nil
        clientFamily = 0
        high = 0
        low = 0
        queryID = 0
        fromSource = true
    }

    /// Sets the context up for a query, in place (a new context would be built aside and copied in).
    @inline(__always)
    mutating func begin(query q: Query, client: ClientAddress, runtime: Unmanaged<SteeringRuntime>, now: UInt64) {
        self.runtime = runtime
        self.now = now
        queryID = q.id
        (clientFamily, high, low, fromSource) = Self.client(of: q, source: client)
        // `QueryEngine.answer` started loading the location tables' first level; take the next step.
        if Self.mayDecide(q) {
            let (family, high) = (clientFamily, high)
            runtime._withUnsafeGuaranteedRef { $0.table.prefetchDeeper(clientFamily: family, high: high) }
        }
    }

    /// Who the client of a query is: the ECS address when the query carries one with a non-zero
    /// source prefix, else the source address; `fromSource` says which.
    @inline(__always)
    static func client(of q: Query, source: ClientAddress) -> (family: Int, high: UInt64, low: UInt64, fromSource: Bool)
    {
        if let ecs = q.clientSubnet, ecs.sourcePrefix > 0 {
            return (ecs.family == 1 ? 4 : 6, ecs.high, ecs.low, false)
        }
        return (Int(source.family), source.octets.0, source.octets.1, true)
    }

    /// Whether a query may reach a load-balanced decision (only A and AAAA do).
    @inline(__always)
    static func mayDecide(_ q: Query) -> Bool { q.qtype == RRType.a || q.qtype == RRType.aaaa }
}

extension Resolution {
    /// Answers a load-balanced name from its policy. False when the answer comes from the zone
    /// instead (all down with `last-resort`, or no endpoint of the queried family).
    mutating func steered(_ node: Int, owner: UnsafeRawBufferPointer, writer w: inout MessageWriter) -> Bool {
        guard let runtime = steer.runtime else { return false }
        return runtime._withUnsafeGuaranteedRef { rt in
            steered(rt, node: node, owner: owner, writer: &w)
        }
    }

    mutating func steered(
        _ rt: SteeringRuntime, node: Int, owner: UnsafeRawBufferPointer,
        writer w: inout MessageWriter
    ) -> Bool {
        guard let (n, d) = decide(rt, node: node) else { return false }
        let table = rt.table
        let family = qtype == RRType.a ? 4 : 6
        switch d.outcome {
        case .zone:
            return false
        case .servfail:
            rcode = Rcode.servFail
            return true
        case .failOpen:
            let c = table.names[Int(n)]
            let model = table.model
            let start = w.position
            let startCount = w.u16(at: 6)
            var written = 0
            for p in c.config.pools {
                for e in model.pools[p].endpoints where Int(table.endpointFamily[e]) == family {
                    guard writeEndpoint(table, e, owner: owner, ttl: d.ttl, writer: &w) else {
                        w.rewind(to: start)
                        w.setU16(startCount, at: 6)
                        truncated = true
                        return true
                    }
                    written += 1
                }
            }
            if written == 0,
                let p = c.config.pools.first(where: {
                    model.pools[$0].endpoints.contains { table.endpointFamily[$0] == 0 }
                })
            {
                return writeCNAME(table, model.pools[p].endpoints[0], node: node, owner: owner, ttl: d.ttl, writer: &w)
            }
            return true
        case .answer:
            if d.count == 1 && table.endpointFamily[Int(d.picks[0])] == 0 {  // a CNAME endpoint
                return writeCNAME(table, Int(d.picks[0]), node: node, owner: owner, ttl: d.ttl, writer: &w)
            }
            let start = w.position
            let startCount = w.u16(at: 6)
            for i in 0..<d.count {
                guard writeEndpoint(table, Int(d.picks[i]), owner: owner, ttl: d.ttl, writer: &w) else {
                    w.rewind(to: start)
                    w.setU16(startCount, at: 6)
                    truncated = true
                    return true
                }
            }
            return true
        }
    }

    /// The decision for the load-balanced name at `node`, counted in the answer counters and noted
    /// in `steer` (in place: the context is not copied). nil when `node` is not load-balanced for
    /// the query type.
    @inline(__always)
    mutating func decide(_ rt: SteeringRuntime, node: Int) -> (name: Int32, decision: Decision)? {
        let table = rt.table
        let n = rt.name(zone: zone, node: node)
        guard n >= 0 else { return nil }
        guard table.answerTypes[n] & (qtype == RRType.a ? 1 : 2) != 0 else { return nil }
        let ns = steer.now != 0 ? steer.now : lodestar_monotonic_ns()
        let random =
            steer.fixedRandom ?? mix(ns ^ UInt64(steer.queryID) << 48 ^ steer.high ^ steer.low &* 0x9E37_79B9_7F4A_7C15)
        var trace = NoTrace()
        let family = qtype == RRType.a ? 4 : 6
        let d = table.decide(
            name: n, family: family, clientFamily: steer.clientFamily, high: steer.high,
            low: steer.low, health: rt.facts, now: Double(ns) * 1e-9, random: random, trace: &trace,
            memo: rt.memo)
        steer.decisions += 1
        if !d.repeatable { steer.repeatable = false }
        steer.stableUntil = min(steer.stableUntil, d.stableUntil)
        // What the decision read of the client, whatever the outcome (the answer cache keys on it).
        steer.clientBits = max(steer.clientBits, d.scope)
        steer.locationClass = d.locationClass
        let counters = rt.counters
        switch d.outcome {
        case .zone: steer.counted.count(name: n, fallback: .zone, in: counters)
        case .servfail: steer.counted.count(name: n, fallback: .servfail, in: counters)
        case .failOpen: steer.counted.count(name: n, fallback: .failOpen, in: counters)
        case .answer:
            steer.scope = max(steer.scope, d.scope)
            steer.counted.count(name: n, pool: d.pool, in: counters)
            for i in 0..<d.count { steer.counted.count(endpoint: Int(d.picks[i]), in: counters) }
        }
        return (Int32(n), d)
    }

    /// The pre-encoded RDATA of endpoint `e` (an address, or a CNAME target in wire form). `table`
    /// is borrowed from the caller, which holds the runtime for the query.
    @inline(__always)
    func endpointRDATA<R>(_ table: SteeringTable, _ e: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        table.rdata.withUnsafeBytes { all in
            body(
                UnsafeRawBufferPointer(
                    rebasing: all[Int(table.rdataStart[e])..<Int(table.rdataStart[e] + table.rdataLength[e])]))
        }
    }

    /// One A or AAAA record of an endpoint in the answer section.
    mutating func writeEndpoint(
        _ table: SteeringTable, _ e: Int, owner: UnsafeRawBufferPointer, ttl: UInt32,
        writer w: inout MessageWriter
    ) -> Bool {
        let ok = endpointRDATA(table, e) { rd in
            w.writeRR(
                owner: owner, type: rd.count == 4 ? RRType.a : RRType.aaaa, rrClass: RRClass.in, ttl: ttl, rdata: rd)
        }
        if ok { w.incrementCount(section: .answer) }
        return ok
    }

    /// A CNAME endpoint: the alias, then the target's data when it is in this zone.
    mutating func writeCNAME(
        _ table: SteeringTable, _ e: Int, node: Int, owner: UnsafeRawBufferPointer, ttl: UInt32,
        writer w: inout MessageWriter
    ) -> Bool {
        let target: [UInt8] = endpointRDATA(table, e) { Array($0) }
        let ok = target.withUnsafeBytes {
            w.writeRR(owner: owner, type: RRType.cname, rrClass: RRClass.in, ttl: ttl, rdata: $0)
        }
        guard ok else {
            truncated = true
            return true
        }
        w.incrementCount(section: .answer)
        target.withUnsafeBytes { follow($0, owner: owner, writer: &w) }
        return true
    }
}
