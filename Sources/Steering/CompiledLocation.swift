/// Where a table's location tries come from.
public enum GeoSources: Sendable {
    /// Databases opened for this compile (nil: not configured).
    case opened(city: GeoInput?, asn: GeoInput?)
    /// None opened: the files have not changed, and the previous table holds the tries of every
    /// location-dependent name (`SteeringTable.canReuse`).
    case unchanged
}

/// The databases a table was compiled from.
public struct GeoFiles: Sendable, Equatable {
    public var city: GeoFile?
    public var asn: GeoFile?

    public init(city: GeoFile? = nil, asn: GeoFile? = nil) {
        self.city = city
        self.asn = asn
    }

    /// The same paths, each file still the same version (for files opened now), or the identities
    /// of `now` (for files only looked at: `GeoFile` from `stat`).
    func sameFiles(_ now: GeoFiles) -> Bool {
        func same(_ a: GeoFile?, _ b: GeoFile?) -> Bool {
            switch (a, b) {
            case (nil, nil): return true
            case (let a?, let b?): return a.path == b.path && a.identity == b.identity
            default: return false
            }
        }
        return same(city, now.city) && same(asn, now.asn)
    }
}

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

/// One set of location tries of a table, and what it was built for.
struct CompiledLocation: Sendable {
    var signature: LocationSignature
    var v4: LocationTrie
    var v6: LocationTrie
    var classes: [LocationClass]
}
