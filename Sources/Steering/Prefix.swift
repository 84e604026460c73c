/// An address prefix (for CIDR maps), bits in network order, IPv4 in the top 32 bits of `high`.
public struct Prefix: Sendable, Equatable, CustomStringConvertible {
    public var family: Int
    public var high: UInt64
    public var low: UInt64
    public var length: Int

    public init(family: Int, high: UInt64, low: UInt64, length: Int) {
        self.family = family
        self.length = length
        let (h, l) = Prefix.mask(length: length)
        self.high = high & h
        self.low = low & l
    }

    /// The masks of the first `length` bits (0…128) of the two address halves.
    @inlinable @inline(__always)
    public static func mask(length: Int) -> (UInt64, UInt64) {
        let h: UInt64 = length >= 64 ? ~0 : (length == 0 ? 0 : ~0 << (64 - UInt64(length)))
        let l: UInt64 = length >= 128 ? ~0 : (length <= 64 ? 0 : ~0 << (128 - UInt64(length)))
        return (h, l)
    }

    /// Bit `i` (0 = most significant) of the prefix.
    public func bit(_ i: Int) -> Int {
        i < 64 ? Int(high >> (63 - UInt64(i)) & 1) : Int(low >> (127 - UInt64(i)) & 1)
    }

    /// Whether the prefix covers an address of the same family.
    public func contains(family f: Int, high h: UInt64, low l: UInt64) -> Bool {
        guard f == family else { return false }
        let (mh, ml) = Prefix.mask(length: length)
        return h & mh == high && l & ml == low
    }

    public var description: String {
        if family == 4 {
            let v = UInt32(truncatingIfNeeded: high >> 32)
            return "\(v >> 24).\(v >> 16 & 0xFF).\(v >> 8 & 0xFF).\(v & 0xFF)/\(length)"
        }
        var groups: [String] = []
        for i in 0..<8 {
            let word = i < 4 ? high >> (48 - 16 * UInt64(i)) : low >> (48 - 16 * UInt64(i - 4))
            groups.append(String(word & 0xFFFF, radix: 16))
        }
        return groups.joined(separator: ":") + "/\(length)"
    }
}
