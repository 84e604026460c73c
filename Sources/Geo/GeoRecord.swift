/// What a MaxMind-format database says about one address, as plain Swift values.
public struct GeoRecord: Sendable, Hashable {
    /// Two-letter continent code (`EU`, `NA`, `AS`…), if known.
    public var continent: String?
    /// ISO 3166-1 alpha-2 country code, if known.
    public var country: String?
    /// ISO 3166-2 subdivision code of the first subdivision (`CA` for California), if known.
    public var subdivision: String?
    public var latitude: Double?
    public var longitude: Double?
    /// Autonomous system number (ASN databases).
    public var asn: UInt32?
    /// Prefix length of the database network that holds the address (for ECS scope, RFC 7871 §7.2.1),
    /// counted within the address family (0–32 for IPv4).
    public var prefixLength: Int

    public init(
        continent: String? = nil, country: String? = nil, subdivision: String? = nil, latitude: Double? = nil,
        longitude: Double? = nil, asn: UInt32? = nil, prefixLength: Int = 0
    ) {
        self.continent = continent
        self.country = country
        self.subdivision = subdivision
        self.latitude = latitude
        self.longitude = longitude
        self.asn = asn
        self.prefixLength = prefixLength
    }

    /// Drops coordinates a database may hold but no place has: a latitude past ±90°, a longitude
    /// past ±180°, or one that is not finite (distance ordering would rank them, explain print a
    /// 300-digit number).
    mutating func dropImpossibleCoordinates() {
        if let la = latitude, !(la.isFinite && abs(la) <= 90) { latitude = nil }
        if let lo = longitude, !(lo.isFinite && abs(lo) <= 180) { longitude = nil }
    }
}
