/// What health is kept for: regions, their pools, the pools' endpoints and each endpoint's checks,
/// by index as in the steering model (which builds it: `SteeringModel.health`). Names are unique
/// per kind; state carries over reloads by name.
public struct HealthTopology: Sendable, Equatable {
    public struct Pool: Sendable, Equatable {
        public var name: String
        /// Index into `regions`.
        public var region: Int
        /// Indices into `endpoints`.
        public var endpoints: [Int]
        public var weight: Double
        /// Passing while at least this fraction of its endpoints is up.
        public var upThreshold: Double
        /// After recovering, the share ramps linearly over this many seconds.
        public var slowStart: Double

        public init(
            name: String, region: Int, endpoints: [Int], weight: Double = 1, upThreshold: Double = 0.5,
            slowStart: Double = 0
        ) {
            self.name = name
            self.region = region
            self.endpoints = endpoints
            self.weight = weight
            self.upThreshold = upThreshold
            self.slowStart = slowStart
        }
    }

    public struct Endpoint: Sendable, Equatable {
        public var name: String
        /// Index into `pools`.
        public var pool: Int
        public var weight: Double
        /// 4 or 6 for an address, 0 for a CNAME (usable for either family).
        public var family: Int
        public var checks: [CheckSpec]
        public var checkMode: CheckMode

        public init(
            name: String, pool: Int, weight: Double = 1, family: Int = 4, checks: [CheckSpec] = [],
            checkMode: CheckMode = .all
        ) {
            self.name = name
            self.pool = pool
            self.weight = weight
            self.family = family
            self.checks = checks
            self.checkMode = checkMode
        }
    }

    /// Region names.
    public var regions: [String] = []
    public var pools: [Pool] = []
    public var endpoints: [Endpoint] = []

    public init(regions: [String] = [], pools: [Pool] = [], endpoints: [Endpoint] = []) {
        self.regions = regions
        self.pools = pools
        self.endpoints = endpoints
    }

    public func region(named n: String) -> Int? { regions.firstIndex(of: n) }
    public func pool(named n: String) -> Int? { pools.firstIndex { $0.name == n } }
    public func endpoint(named n: String) -> Int? { endpoints.firstIndex { $0.name == n } }

    /// The region name of an endpoint.
    public func regionName(ofEndpoint e: Int) -> String { regions[pools[endpoints[e].pool].region] }
}
