/// What a name answers when no pool is usable.
public enum AllDownMode: String, Sendable {
    /// Every configured endpoint of the queried family (gdnsd, Route 53).
    case failOpen = "fail-open"
    /// The RRset in the zone file at the name, or NODATA.
    case lastResort = "last-resort"
    case servfail
}
