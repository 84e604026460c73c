import DNSWire
import Foundation
import Steering

/// An IPv4 or IPv6 prefix, for access lists.
package struct CIDR: Sendable, Equatable {
    package var isIPv6: Bool
    package var bytes: [UInt8]
    package var prefix: Int

    package init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1)
        guard let addr = parts.first else { return nil }
        if let b = IPAddress.parse(String(addr)) {
            bytes = b
            isIPv6 = b.count == 16
        } else {
            return nil
        }
        let maxPrefix = isIPv6 ? 128 : 32
        if parts.count == 2 {
            guard let p = Int(parts[1]), p >= 0, p <= maxPrefix else { return nil }
            prefix = p
        } else {
            prefix = maxPrefix
        }
    }

    /// Whether `address` (4 or 16 octets) lies in the prefix; IPv4-mapped IPv6 counts as IPv4.
    package func contains(_ address: [UInt8]) -> Bool {
        var a = address
        if a.count == 16 && !isIPv6 && a[0..<10].allSatisfy({ $0 == 0 }) && a[10] == 0xFF && a[11] == 0xFF {
            a = Array(a[12...])
        }
        guard a.count == bytes.count else { return false }
        var bits = prefix
        var i = 0
        while bits > 0 {
            let mask: UInt8 = bits >= 8 ? 0xFF : UInt8(0xFF) << (8 - bits)
            if a[i] & mask != bytes[i] & mask { return false }
            bits -= 8
            i += 1
        }
        return true
    }
}

extension CIDR {
    /// The prefix as the steering module's `Prefix` (bits in two 64-bit halves).
    package var asPrefix: Prefix {
        let c = ClientAddress(bytes: bytes)
        return Prefix(family: isIPv6 ? 6 : 4, high: c.octets.0, low: c.octets.1, length: prefix)
    }
}

extension Array where Element == CIDR {
    /// Whether any prefix of this access list holds `client`.
    package func allows(_ client: ClientAddress) -> Bool {
        let bytes = client.bytes
        return contains { $0.contains(bytes) }
    }
}

/// Textual IP address parsing through inet_pton.
package enum IPAddress {
    /// Text form of 4 or 16 octets (inet_ntop).
    package static func format(_ b: [UInt8]) -> String {
        var buf = [CChar](repeating: 0, count: 64)
        let family = b.count == 4 ? AF_INET : AF_INET6
        _ = b.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &buf, 64) }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    package static func parse(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }
}

/// A listen address `ADDR:PORT` or `[ADDR6]:PORT`.
package struct ListenAddress: Sendable, CustomStringConvertible {
    package var host: String
    package var port: Int

    package static func parse(_ text: String) -> ListenAddress? {
        var host: Substring
        var portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            portText = rest.dropFirst()
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard let port = Int(portText), (0...65535).contains(port), IPAddress.parse(String(host)) != nil else {
            return nil
        }
        return ListenAddress(host: String(host), port: port)
    }

    package var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// 127.0.0.0/8 or ::1.
    package var isLoopback: Bool {
        guard let b = IPAddress.parse(host) else { return false }
        return b.count == 4 ? b[0] == 127 : b == [UInt8](repeating: 0, count: 15) + [1]
    }
}
