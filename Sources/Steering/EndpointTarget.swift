/// What an endpoint answers with.
public enum EndpointTarget: Sendable, Equatable {
    /// 4 or 16 octets: an A or AAAA record.
    case address([UInt8])
    /// A CNAME target in wire form, lower-cased.
    case cname([UInt8])

    /// 4, 6, or 0 for a CNAME (usable for either family).
    public var family: Int {
        switch self {
        case .address(let a): return a.count == 4 ? 4 : 6
        case .cname: return 0
        }
    }
}
