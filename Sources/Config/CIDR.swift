import DNSWire
package import Steering

/// `ADDR` or `ADDR/LEN` in config files (access lists, CIDR maps), parsed into the `Prefix` the
/// steering module uses too: one prefix type, matched without allocating.
package enum CIDR {
    package static func parse(_ text: String) -> Prefix? {
        // Empty parts kept: "192.0.2.0/" is a typo, not a /32.
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let addr = parts.first, let bytes = IPAddress.parse(String(addr)) else { return nil }
        let maxPrefix = bytes.count * 8
        var length = maxPrefix
        if parts.count == 2 {
            guard let p = Int(parts[1]), p >= 0, p <= maxPrefix else { return nil }
            length = p
        }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for (i, b) in bytes.enumerated() {
            if i < 8 { high |= UInt64(b) << UInt64(56 - 8 * i) } else { low |= UInt64(b) << UInt64(56 - 8 * (i - 8)) }
        }
        return Prefix(family: bytes.count == 4 ? 4 : 6, high: high, low: low, length: length)
    }
}
