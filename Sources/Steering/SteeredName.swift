/// A load-balanced name.
public struct SteeredName: Sendable {
    public var name: String
    /// Lower-case wire form.
    public var wire: [UInt8]
    /// Query types answered by the policy (A, AAAA); others come from the zone.
    public var types: [UInt16]
    /// TTL while everything is healthy, and while anything the name depends on is degraded.
    public var ttlHigh: UInt32
    public var ttlLow: UInt32
    public var chain: [PolicyStep]
    /// Pool indices, in configured order.
    public var pools: [Int]
    public var geo: GeoRules? = nil
    public var latency: LatencyMap? = nil
    /// Endpoints per answer; 0 = every usable endpoint of the chosen pool.
    public var answers: Int = 1
    /// Sticky per client subnet (consistent hashing) when set: prefix lengths for IPv4 and IPv6.
    public var sticky: (v4: Int, v6: Int)? = nil
    /// Failover spreads a failed pool's share over the others by capacity instead of the next one taking all.
    public var spread: Bool = false
    public var allDown: AllDownMode = .failOpen
    /// Where the name was declared, for messages.
    public var line: Int = 0

    public init(
        name: String, wire: [UInt8], types: [UInt16], ttlHigh: UInt32, ttlLow: UInt32, chain: [PolicyStep],
        pools: [Int]
    ) {
        self.name = name
        self.wire = wire
        self.types = types
        self.ttlHigh = ttlHigh
        self.ttlLow = ttlLow
        self.chain = chain
        self.pools = pools
    }

    public func has(_ step: PolicyStep) -> Bool { chain.contains(step) }
}
