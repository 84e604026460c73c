/// Health as the query path reads it: immutable, rebuilt and swapped whole when anything changes.
///
/// Times are seconds on the monotonic clock the `HealthBoard` was given. A share that ramps
/// after a recovery is computed from `upSince` and the pool's slow-start window at query time.
public struct HealthView: Sendable {
    public struct EndpointState: Sendable, Equatable {
        public var up: Bool = true
        public var upSince: Double = -.infinity
        /// The weight in force: configured, or the admin's override.
        public var weight: Double
        public var reason: String = "up"
    }

    public struct PoolState: Sendable, Equatable {
        /// At least `upThreshold` of its endpoints are up, or the admin forces it up.
        public var passing: Bool = true
        public var upSince: Double = -.infinity
        public var weight: Double
        public var upFraction: Double = 1
        public var reason: String = "up"
    }

    public var endpoints: [EndpointState]
    public var pools: [PoolState]
    /// Per region: how many milliseconds the prober's RTT to its endpoints currently exceeds their
    /// best (0 without live measurements); the latency step adds it to the map's RTT.
    public var regionExtraRTT: [Double]
    /// The same facts in flat arrays for the query path, in a class so a query takes one reference
    /// instead of copying arrays: set by `freeze()`.
    public private(set) var facts: HealthFacts

    /// Everything up, configured weights: the view before any check or override.
    public init(topology: HealthTopology) {
        endpoints = topology.endpoints.map { EndpointState(weight: $0.weight) }
        pools = topology.pools.map { PoolState(weight: $0.weight) }
        regionExtraRTT = topology.regions.map { _ in 0 }
        facts = HealthFacts(endpoints: endpoints, pools: pools, regionExtraRTT: regionExtraRTT, topology: topology)
    }

    /// Copies `endpoints` and `pools` into the flat arrays the query path reads.
    public mutating func freeze(topology: HealthTopology) {
        facts = HealthFacts(endpoints: endpoints, pools: pools, regionExtraRTT: regionExtraRTT, topology: topology)
    }

    @inline(__always)
    public func factor(endpoint e: Int, window: Double, now: Double) -> Double {
        facts.factor(endpoint: e, window: window, now: now)
    }

    @inline(__always)
    public func factor(pool p: Int, window: Double, now: Double) -> Double {
        facts.factor(pool: p, window: window, now: now)
    }
}
