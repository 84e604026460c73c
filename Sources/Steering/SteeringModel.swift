public import Health

// The load-balancing model: regions, pools of endpoints, and the names answered from them.
//
// Built from the config (see `Config/SteeringConfig.swift`), validated there, immutable here.
// Indices tie the parts together: a pool names its region by index, an endpoint its pool.

/// Everything the config says about load balancing.
public struct SteeringModel: Sendable {
    public var regions: [Region] = []
    public var pools: [Pool] = []
    public var endpoints: [Endpoint] = []
    public var names: [SteeredName] = []

    public init() {}

    public func region(named n: String) -> Int? { regions.firstIndex { $0.name == n } }
    public func pool(named n: String) -> Int? { pools.firstIndex { $0.name == n } }
    public func endpoint(named n: String) -> Int? { endpoints.firstIndex { $0.name == n } }
}

extension SteeringModel {
    /// The part of the model health is kept for (the health board's, the prober's view).
    public var health: HealthTopology {
        HealthTopology(
            regions: regions.map(\.name),
            pools: pools.map {
                HealthTopology.Pool(
                    name: $0.name, region: $0.region, endpoints: $0.endpoints, weight: $0.weight,
                    upThreshold: $0.upThreshold, slowStart: $0.slowStart)
            },
            endpoints: endpoints.map {
                HealthTopology.Endpoint(
                    name: $0.name, pool: $0.pool, weight: $0.weight, family: $0.target.family,
                    checks: $0.checks, checkMode: $0.checkMode)
            })
    }
}
