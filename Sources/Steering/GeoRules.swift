/// Geo rules of one name: the most specific match wins (nets, ASN, subdivision, country,
/// continent, default); without any, regions by great-circle distance from the client.
public struct GeoRules: Sendable, Equatable {
    /// Region index lists, keyed by continent code (`EU`), country (`DE`), country-subdivision (`US-CA`), ASN.
    public var continent: [String: [Int]] = [:]
    public var country: [String: [Int]] = [:]
    public var subdivision: [String: [Int]] = [:]
    public var asn: [UInt32: [Int]] = [:]
    /// CIDR map, longest prefix wins; overrides the database (gdnsd's `nets`).
    public var nets: [(Prefix, [Int])] = []
    public var defaultRegions: [Int]? = nil

    public init() {}

    public static func == (a: GeoRules, b: GeoRules) -> Bool {
        a.continent == b.continent && a.country == b.country && a.subdivision == b.subdivision && a.asn == b.asn
            && a.defaultRegions == b.defaultRegions && a.nets.count == b.nets.count
            && zip(a.nets, b.nets).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
    }
}
