import DNSWire
import Foundation
import Steering

/// `ADDR` or `ADDR/LEN` in config files (access lists, CIDR maps), parsed into the `Prefix` the
/// steering module uses too: one prefix type, matched without allocating.
package enum CIDR {
    package static func parse(_ text: String) -> Prefix? {
        let parts = text.split(separator: "/", maxSplits: 1)
        guard let addr = parts.first, let bytes = IPAddress.parse(String(addr)) else { return nil }
        let maxPrefix = bytes.count * 8
        var length = maxPrefix
        if parts.count == 2 {
            guard let p = Int(parts[1]), p >= 0, p <= maxPrefix else { return nil }
            length = p
        }
        var high: UInt64 = 0, low: UInt64 = 0
        for (i, b) in bytes.enumerated() {
            if i < 8 { high |= UInt64(b) << UInt64(56 - 8 * i) } else { low |= UInt64(b) << UInt64(56 - 8 * (i - 8)) }
        }
        return Prefix(family: bytes.count == 4 ? 4 : 6, high: high, low: low, length: length)
    }
}

extension Array where Element == Prefix {
    /// Whether any prefix of this access list holds `client` (an IPv4-mapped client counts as IPv4:
    /// `ClientAddress` stores it so).
    package func allows(_ client: ClientAddress) -> Bool {
        contains { $0.contains(family: Int(client.family), high: client.octets.0, low: client.octets.1) }
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
