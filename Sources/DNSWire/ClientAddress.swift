/// The address a query came from, as plain octets (no sockaddr on the query path).
public struct ClientAddress: Sendable, Hashable {
    /// 4 or 6; 0 when unknown.
    public var family: UInt8
    /// Network-order octets: 4 used for IPv4, 16 for IPv6.
    public var octets: (UInt64, UInt64)

    public static let unknown = ClientAddress(family: 0, octets: (0, 0))

    public func hash(into h: inout Hasher) {
        h.combine(family)
        h.combine(octets.0)
        h.combine(octets.1)
    }

    public init(family: UInt8, octets: (UInt64, UInt64)) {
        self.family = family
        self.octets = octets
    }

    /// From 4 or 16 octets; an IPv4-mapped IPv6 address becomes IPv4.
    public init(bytes: [UInt8]) {
        var b = bytes
        if b.count == 16 && b[0..<10].allSatisfy({ $0 == 0 }) && b[10] == 0xFF && b[11] == 0xFF { b = Array(b[12...]) }
        switch b.count {
        case 4:
            family = 4
            octets = (UInt64(b[0]) << 56 | UInt64(b[1]) << 48 | UInt64(b[2]) << 40 | UInt64(b[3]) << 32, 0)
        case 16:
            family = 6
            var h: UInt64 = 0
            var l: UInt64 = 0
            for i in 0..<8 { h = h << 8 | UInt64(b[i]) }
            for i in 8..<16 { l = l << 8 | UInt64(b[i]) }
            octets = (h, l)
        default:
            family = 0
            octets = (0, 0)
        }
    }

    /// The address octets (4 or 16), for access lists and logs.
    public var bytes: [UInt8] {
        let n = family == 4 ? 4 : (family == 6 ? 16 : 0)
        return (0..<n).map { i in
            i < 8
                ? UInt8(truncatingIfNeeded: octets.0 >> (56 - 8 * UInt64(i)))
                : UInt8(truncatingIfNeeded: octets.1 >> (56 - 8 * UInt64(i - 8)))
        }
    }

    public static func == (a: ClientAddress, b: ClientAddress) -> Bool {
        a.family == b.family && a.octets.0 == b.octets.0 && a.octets.1 == b.octets.1
    }
}
