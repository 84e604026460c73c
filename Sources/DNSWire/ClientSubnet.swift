/// An EDNS Client Subnet option (RFC 7871 §6) as it arrived in a query.
///
/// The address is kept in network order in two 64-bit halves (IPv4 in the top 32 bits of `high`),
/// with every bit past `sourcePrefix` zero, as §6 requires of a well-formed option.
public struct ClientSubnet: Sendable, Equatable {
    /// 1 = IPv4, 2 = IPv6 (IANA address family numbers).
    public var family: UInt16
    public var sourcePrefix: UInt8
    public var scopePrefix: UInt8
    public var high: UInt64
    public var low: UInt64

    public init(family: UInt16, sourcePrefix: UInt8, scopePrefix: UInt8 = 0, high: UInt64 = 0, low: UInt64 = 0) {
        self.family = family
        self.sourcePrefix = sourcePrefix
        self.scopePrefix = scopePrefix
        self.high = high
        self.low = low
    }

    /// Number of address octets carried on the wire: ceil(source / 8) (RFC 7871 §6).
    @inlinable public var addressLength: Int { (Int(sourcePrefix) + 7) / 8 }

    /// Octet `i` of the address in network order.
    @inlinable @inline(__always)
    public func octet(_ i: Int) -> UInt8 {
        i < 8 ? UInt8(truncatingIfNeeded: high >> (56 - 8 * i)) : UInt8(truncatingIfNeeded: low >> (56 - 8 * (i - 8)))
    }

    /// Parses the option data; nil when malformed (the caller answers FORMERR).
    public static func parse(_ data: UnsafeRawBufferPointer) -> ClientSubnet? {
        guard data.count >= 4 else { return nil }
        let family = UInt16(data[0]) << 8 | UInt16(data[1])
        let source = data[2]
        let scope = data[3]
        let maxBits: UInt8
        switch family {
        case 1: maxBits = 32
        case 2: maxBits = 128
        default: return nil
        }
        // RFC 7871 §6: source and scope within the family; the address exactly ceil(source/8) octets.
        guard source <= maxBits, scope <= maxBits else { return nil }
        var ecs = ClientSubnet(family: family, sourcePrefix: source, scopePrefix: scope)
        let n = ecs.addressLength
        guard data.count == 4 + n else { return nil }
        // n ≤ 16 octets: shifts within the word, wrapping arithmetic cannot wrap.
        for i in 0..<n {
            let b = UInt64(data[4 &+ i])
            if i < 8 { ecs.high |= b &<< UInt64(56 &- 8 &* i) } else { ecs.low |= b &<< UInt64(120 &- 8 &* i) }
        }
        // RFC 7871 §6: bits past the source prefix MUST be zero.
        if n > 0, source % 8 != 0 {
            let last = data[4 + n - 1]
            let mask = UInt8(0xFF) >> (source % 8)
            guard last & mask == 0 else { return nil }
        }
        return ecs
    }
}
