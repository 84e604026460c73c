/// Health in flat arrays, immutable: what a query reads.
public final class HealthFacts: Sendable {
    public let endpointUp: [Bool]
    public let endpointSince: [Double]
    public let endpointWeight: [Double]
    public let poolPassing: [Bool]
    public let poolSince: [Double]
    public let poolWeight: [Double]
    /// For explanations only.
    public let poolReason: [String]
    /// Per pool: whether an endpoint usable for IPv4 (an address or a CNAME) is up; the same for IPv6.
    public let poolUp4: [Bool]
    public let poolUp6: [Bool]
    /// Per pool: from when the pool and all its endpoints are up and past slow start (+∞ while any
    /// is down). Before that, names using the pool answer with their low TTL.
    public let poolSettled: [Double]
    /// Per pool: its region's live RTT excess in milliseconds (see `HealthView.regionExtraRTT`).
    public let poolExtraRTT: [Double]

    init(
        endpoints: [HealthView.EndpointState], pools: [HealthView.PoolState], regionExtraRTT: [Double],
        topology: HealthTopology
    ) {
        poolExtraRTT = topology.pools.map { regionExtraRTT[$0.region] }
        endpointUp = endpoints.map(\.up)
        endpointSince = endpoints.map(\.upSince)
        endpointWeight = endpoints.map(\.weight)
        poolPassing = pools.map(\.passing)
        poolSince = pools.map(\.upSince)
        poolWeight = pools.map(\.weight)
        poolReason = pools.map(\.reason)
        func anyUp(_ p: HealthTopology.Pool, _ family: Int) -> Bool {
            p.endpoints.contains { e in
                let f = topology.endpoints[e].family
                return (f == 0 || f == family) && endpoints[e].up
            }
        }
        poolUp4 = topology.pools.map { anyUp($0, 4) }
        poolUp6 = topology.pools.map { anyUp($0, 6) }
        poolSettled = topology.pools.enumerated().map { (i, p) in
            guard pools[i].passing, p.endpoints.allSatisfy({ endpoints[$0].up }) else { return .infinity }
            guard p.slowStart > 0 else { return -.infinity }
            return p.endpoints.reduce(pools[i].upSince) { max($0, endpoints[$1].upSince) } + p.slowStart
        }
    }

    /// 0…1: how much of its share an endpoint takes now (0 down, ramping during slow start).
    @inline(__always)
    public func factor(endpoint e: Int, window: Double, now: Double) -> Double {
        guard endpointUp[e] else { return 0 }
        return ramp(since: endpointSince[e], window: window, now: now)
    }

    @inline(__always)
    public func factor(pool p: Int, window: Double, now: Double) -> Double {
        guard poolPassing[p] else { return 0 }
        return ramp(since: poolSince[p], window: window, now: now)
    }

    @inline(__always)
    func ramp(since: Double, window: Double, now: Double) -> Double {
        guard window > 0, now - since < window else { return 1 }
        return max(0, (now - since) / window)
    }
}
