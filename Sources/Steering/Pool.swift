/// The endpoints of one region that a name can answer with.
public struct Pool: Sendable, Equatable {
    public var name: String
    public var region: Int
    /// Indices into `SteeringModel.endpoints`.
    public var endpoints: [Int]
    /// Share when a name spreads traffic over pools by weight (`weighted` without `failover`).
    public var weight: Double = 1
    /// Traffic the pool can take when another region fails; defaults to the sum of its endpoints'.
    public var capacity: Double
    /// A pool is up while at least this fraction of its endpoints is up (gdnsd's `up_thresh`).
    public var upThreshold: Double = 0.5
    /// After recovering, a pool's and its endpoints' share ramps linearly over this many seconds.
    public var slowStart: Double = 0

    public init(
        name: String, region: Int, endpoints: [Int], weight: Double = 1, capacity: Double,
        upThreshold: Double = 0.5, slowStart: Double = 0
    ) {
        self.name = name
        self.region = region
        self.endpoints = endpoints
        self.weight = weight
        self.capacity = capacity
        self.upThreshold = upThreshold
        self.slowStart = slowStart
    }
}
