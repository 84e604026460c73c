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
