public import Health

public struct Endpoint: Sendable, Equatable {
    /// Unique across the config: the admin API and metrics name endpoints by it.
    public var name: String
    public var target: EndpointTarget
    public var weight: Double = 1
    /// Share of traffic this endpoint can take when others fail; defaults to its weight.
    public var capacity: Double
    public var pool: Int = 0
    /// Health checks the prober runs for this endpoint (none: up unless the admin or an external
    /// input says otherwise).
    public var checks: [CheckSpec] = []
    /// Whether every check must pass (`all`, the default) or one is enough (`any`).
    public var checkMode: CheckMode = .all

    public init(name: String, target: EndpointTarget, weight: Double = 1, capacity: Double? = nil, pool: Int = 0) {
        self.name = name
        self.target = target
        self.weight = weight
        self.capacity = capacity ?? weight
        self.pool = pool
    }
}
