/// Everything a name's location classes depend on: its steps, pools, geo rules and latency map,
/// and where its pools' regions are. Two names (or one name in two configs) with equal
/// signatures have the same tries and classes.
struct LocationSignature: Equatable, Sendable {
    var chain: [PolicyStep]
    var pools: [Int]
    var spread: Bool
    var geo: GeoRules?
    var latency: LatencyMap?
    var poolRegions: [Int]
    var regions: [Region]

    init(_ n: SteeredName, model: SteeringModel) {
        chain = n.chain
        pools = n.pools
        // Spread changes the classes only where the classifier reads it (failover, no latency).
        spread = n.spread && n.has(.failover) && !n.has(.latency)
        geo = n.geo
        latency = n.latency
        poolRegions = n.pools.map { model.pools[$0].region }
        regions = poolRegions.map { model.regions[$0] }
    }
}
