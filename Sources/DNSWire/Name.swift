public import Glibc

/// Helpers for domain names in uncompressed wire form (a sequence of length-prefixed labels ending in 0).
///
/// Names are handled as byte ranges, never as `String`, so the query path allocates nothing.
public enum Name {
    /// ASCII lower-casing of one octet (RFC 4343: only A–Z fold).
    @inlinable @inline(__always)
    public static func lower(_ b: UInt8) -> UInt8 {
        (b &- 65) < 26 ? b | 0x20 : b
    }

    /// Compares two wire names case-insensitively.
    ///
    /// Names in zones are stored lower-case and most queries are lower-case too, so an exact
    /// comparison settles almost every call; only a mismatch pays for case folding.
    @inlinable @inline(__always)
    public static func equal(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        if a.count == 0 || memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0 { return true }
        var i = 0
        while i < a.count {
            let x = a[i]
            let y = b[i]
            if x != y && ((x &- 65) < 26 ? x | 0x20 : x) != ((y &- 65) < 26 ? y | 0x20 : y) { return false }
            i += 1
        }
        return true
    }

    /// Number of labels of a wire name, root excluded.
    public static func labelCount(_ name: [UInt8]) -> Int {
        var i = 0
        var n = 0
        while i < name.count, name[i] != 0 {
            i += Int(name[i]) + 1
            n += 1
        }
        return n
    }

    /// Lower-cased copy.
    public static func lowercased(_ name: [UInt8]) -> [UInt8] { name.map(lower) }

    /// Whether the wire name `name` equals `ancestor` or lies below it, case-insensitively.
    ///
    /// The match must begin at a label boundary: `xsub.example.` is not below `sub.example.`.
    @inlinable
    public static func isSubdomain(_ name: UnsafeRawBufferPointer, of ancestor: UnsafeRawBufferPointer) -> Bool {
        guard name.count >= ancestor.count else { return false }
        let start = name.count - ancestor.count
        guard equal(UnsafeRawBufferPointer(rebasing: name[start...]), ancestor) else { return false }
        var i = 0
        while i < start { i += Int(name[i]) + 1 }
        return i == start
    }

    /// As above, for names held in arrays or slices (load time).
    public static func isSubdomain(_ name: ArraySlice<UInt8>, of ancestor: ArraySlice<UInt8>) -> Bool {
        name.withUnsafeBytes { n in ancestor.withUnsafeBytes { a in isSubdomain(n, of: a) } }
    }

    /// Parses presentation form (`www.example.com.`, `\.` and `\DDD` escapes) into wire form.
    ///
    /// Relative names are taken as absolute. Returns nil for a malformed name.
    public static func fromText(_ text: String) -> [UInt8]? {
        var out: [UInt8] = []
        var label: [UInt8] = []
        let bytes = Array(text.utf8)
        if bytes == [UInt8(ascii: ".")] { return [0] }
        var i = 0
        func flush() -> Bool {
            guard !label.isEmpty, label.count <= WireLimits.maxLabelLength else { return false }
            out.append(UInt8(label.count))
            out += label
            label.removeAll(keepingCapacity: true)
            return true
        }
        while i < bytes.count {
            let c = bytes[i]
            if c == UInt8(ascii: "\\") {
                guard i + 1 < bytes.count else { return nil }
                let d = bytes[i + 1]
                if d >= 48 && d <= 57 {
                    // \DDD: exactly three digits after the backslash (RFC 1035 §5.1).
                    guard i + 4 <= bytes.count else { return nil }
                    let digits = bytes[(i + 1)..<(i + 4)]
                    guard digits.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
                    let v = digits.reduce(0) { $0 * 10 + Int($1 - 48) }
                    guard v < 256 else { return nil }
                    label.append(UInt8(v))
                    i += 4
                } else {
                    label.append(d)
                    i += 2
                }
            } else if c == UInt8(ascii: ".") {
                guard flush() else { return nil }
                i += 1
            } else {
                label.append(c)
                i += 1
            }
        }
        if !label.isEmpty { guard flush() else { return nil } }
        out.append(0)
        return out.count <= WireLimits.maxNameLength ? out : nil
    }

    /// Presentation form of a wire name, with escapes as in RFC 4343 §2.1.
    public static func toText(_ name: [UInt8]) -> String {
        if name.count <= 1 { return "." }
        var s = ""
        var i = 0
        while i < name.count, name[i] != 0 {
            let len = Int(name[i])
            for b in name[(i + 1)..<min(name.count, i + 1 + len)] {
                switch b {
                case UInt8(ascii: "."), UInt8(ascii: "\\"), UInt8(ascii: "\""), UInt8(ascii: "("),
                    UInt8(ascii: ")"), UInt8(ascii: ";"), UInt8(ascii: "@"), UInt8(ascii: "$"):
                    s += "\\" + String(UnicodeScalar(b))
                case 33...126: s += String(UnicodeScalar(b))
                default:
                    let d = String(b)
                    s += "\\" + String(repeating: "0", count: 3 - d.count) + d
                }
            }
            s += "."
            i += len + 1
        }
        return s
    }
}
