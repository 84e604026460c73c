import CLodestarSys
import DNSWire
import Steering
import Zones

/// What a query brings to a load-balanced answer: who the client is (the ECS address when the
/// query carries one with a non-zero source prefix, else the source address), and what comes back.
struct SteerContext {
    unowned(unsafe) let runtime: SteeringRuntime
    let clientFamily: Int
    let high: UInt64
    let low: UInt64
    let queryID: UInt16
    var fixedRandom: UInt64? = nil
    /// The largest scope of any load-balanced answer in the response (RFC 7871 §7.2.1).
    var scope = 0

    init(query q: Query, client: ClientAddress, runtime: SteeringRuntime) {
        self.runtime = runtime
        queryID = q.id
        if let ecs = q.clientSubnet, ecs.sourcePrefix > 0 {
            clientFamily = ecs.family == 1 ? 4 : 6
            high = ecs.high
            low = ecs.low
        } else {
            clientFamily = Int(client.family)
            high = client.octets.0
            low = client.octets.1
        }
    }
}

extension Resolution {
    /// Answers a load-balanced name from its policy. False when the answer comes from the zone
    /// instead (all down with `last-resort`, or no endpoint of the queried family).
    mutating func steered(_ node: Int, owner: UnsafeRawBufferPointer, writer w: inout MessageWriter) -> Bool {
        guard var ctx = steer else { return false }
        let rt = ctx.runtime
        let table = rt.table
        let n = rt.name(zone: zone, node: node)
        guard n >= 0 else { return false }
        let c = table.names[n]
        guard qtype == RRType.a ? c.answersA : c.answersAAAA else { return false }
        let ns = lodestar_monotonic_ns()
        let random = ctx.fixedRandom ?? mix(ns ^ UInt64(ctx.queryID) << 48 ^ ctx.high ^ mix(ctx.low))
        var trace = NoTrace()
        let family = qtype == RRType.a ? 4 : 6
        let d = table.decide(name: n, family: family, clientFamily: ctx.clientFamily, high: ctx.high,
                             low: ctx.low, health: rt.facts, now: Double(ns) * 1e-9, random: random, trace: &trace)
        switch d.outcome {
        case .zone:
            rt.counters.count(name: n, fallback: .zone)
            return false
        case .servfail:
            rt.counters.count(name: n, fallback: .servfail)
            rcode = Rcode.servFail
            return true
        case .failOpen:
            rt.counters.count(name: n, fallback: .failOpen)
            let model = table.model
            let start = w.position, startCount = w.u16(at: 6)
            var written = 0
            for p in c.config.pools {
                for e in model.pools[p].endpoints where Int(table.endpointFamily[e]) == family {
                    guard writeEndpoint(e, owner: owner, ttl: d.ttl, writer: &w) else {
                        w.rewind(to: start); w.setU16(startCount, at: 6); truncated = true; return true
                    }
                    written += 1
                }
            }
            if written == 0, let p = c.config.pools.first(where: { model.pools[$0].endpoints.contains { table.endpointFamily[$0] == 0 } }) {
                return writeCNAME(model.pools[p].endpoints[0], node: node, owner: owner, ttl: d.ttl, writer: &w)
            }
            return true
        case .answer:
            ctx.scope = max(ctx.scope, d.scope)
            steer = ctx
            rt.counters.count(name: n, pool: d.pool)
            if d.count == 1 && table.endpointFamily[Int(d.picks[0])] == 0 {  // a CNAME endpoint
                rt.counters.count(endpoint: Int(d.picks[0]))
                return writeCNAME(Int(d.picks[0]), node: node, owner: owner, ttl: d.ttl, writer: &w)
            }
            let start = w.position, startCount = w.u16(at: 6)
            for i in 0..<d.count {
                let e = Int(d.picks[i])
                rt.counters.count(endpoint: e)
                guard writeEndpoint(e, owner: owner, ttl: d.ttl, writer: &w) else {
                    w.rewind(to: start); w.setU16(startCount, at: 6); truncated = true; return true
                }
            }
            return true
        }
    }

    /// The pre-encoded RDATA of endpoint `e` (an address, or a CNAME target in wire form).
    @inline(__always)
    func endpointRDATA<R>(_ e: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        let table = steer!.runtime.table
        return table.rdata.withUnsafeBytes { all in
            body(UnsafeRawBufferPointer(rebasing: all[Int(table.rdataStart[e])..<Int(table.rdataStart[e] + table.rdataLength[e])]))
        }
    }

    /// One A or AAAA record of an endpoint in the answer section.
    mutating func writeEndpoint(_ e: Int, owner: UnsafeRawBufferPointer, ttl: UInt32, writer w: inout MessageWriter) -> Bool {
        let ok = endpointRDATA(e) { rd in
            w.writeRR(owner: owner, type: rd.count == 4 ? RRType.a : RRType.aaaa, rrClass: RRClass.in, ttl: ttl, rdata: rd)
        }
        if ok { w.incrementCount(section: 1) }
        return ok
    }

    /// A CNAME endpoint: the alias, then the target's data when it is in this zone.
    mutating func writeCNAME(_ e: Int, node: Int, owner: UnsafeRawBufferPointer, ttl: UInt32, writer w: inout MessageWriter) -> Bool {
        let target: [UInt8] = endpointRDATA(e) { Array($0) }
        let ok = target.withUnsafeBytes { w.writeRR(owner: owner, type: RRType.cname, rrClass: RRClass.in, ttl: ttl, rdata: $0) }
        guard ok else { truncated = true; return true }
        w.incrementCount(section: 1)
        target.withUnsafeBytes { follow($0, from: node, writer: &w) }
        return true
    }
}
