/// Where a table's location tries come from.
public enum GeoSources: Sendable {
    /// Databases opened for this compile (nil: not configured).
    case opened(city: GeoInput?, asn: GeoInput?)
    /// None opened: the files have not changed, and the previous table holds the tries of every
    /// location-dependent name (`SteeringTable.canReuse`).
    case unchanged
}
