import Glibc

/// Textual IP address parsing through inet_pton.
public enum IPAddress {
    /// Text form of 4 or 16 octets (inet_ntop).
    public static func format(_ b: [UInt8]) -> String {
        var buf = [CChar](repeating: 0, count: 64)
        let family = b.count == 4 ? AF_INET : AF_INET6
        _ = b.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &buf, 64) }
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public static func parse(_ text: String) -> [UInt8]? {
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
