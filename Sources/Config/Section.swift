import Steering
import Yams

/// A YAML mapping with line-aware accessors.
struct Section {
    let node: Node
    let mapping: Node.Mapping
    let file: String
    let name: String

    init(_ node: Node, file: String, name: String) throws {
        guard let mapping = node.mapping else {
            throw ConfigError(file: file, line: (node.mark?.line ?? 0), message: "\(name) must be a mapping")
        }
        self.node = node
        self.mapping = mapping
        self.file = file
        self.name = name
        // A key given twice: the second would be silently ignored (the first wins), unchecked.
        var seen: [String: Int] = [:]
        for (k, _) in mapping {
            guard let key = k.string else { continue }
            if let first = seen[key] {
                throw ConfigError(
                    file: file, line: k.mark?.line ?? 0,
                    message: "\(key) given twice in \(name) (first on line \(first))")
            }
            seen[key] = k.mark?.line ?? 0
        }
    }

    /// Decimal as people write it: no hex, octal, signs, underscores, exponents or leading zeros
    /// (YAML and Swift take `0x10`, `+1`, `1_000` and `1e3`; a typo must not become a number).
    static func isCanonical(_ s: String, fraction: Bool) -> Bool {
        var u = Substring(s).utf8[...]
        if u.first == UInt8(ascii: "-") { u = u.dropFirst() }
        let whole = u.prefix { $0 >= 0x30 && $0 <= 0x39 }
        guard !whole.isEmpty, whole.count == 1 || whole.first != 0x30 else { return false }
        u = u.dropFirst(whole.count)
        if u.isEmpty { return true }
        guard fraction, u.first == UInt8(ascii: "."), u.count >= 2 else { return false }
        return u.dropFirst().allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }

    func line(_ n: Node) -> Int { n.mark?.line ?? 0 }

    func allow(_ keys: [String]) throws {
        for (k, _) in mapping {
            guard let key = k.string, keys.contains(key) else {
                throw ConfigError(
                    file: file, line: line(k),
                    message:
                        "unknown key \"\(k.string ?? "?")\" in \(name) (known: \(keys.joined(separator: ", ")))")
            }
        }
    }

    func value(_ key: String) -> (Node, Int)? {
        for (k, v) in mapping where k.string == key { return (v, line(k)) }
        return nil
    }

    func section(_ key: String) throws -> Section? {
        guard let (v, _) = value(key) else { return nil }
        return try Section(v, file: file, name: key)
    }

    func string(_ key: String) throws -> (String, Int)? {
        guard let (v, l) = value(key) else { return nil }
        guard let s = v.scalar?.string else {
            throw ConfigError(file: file, line: l, message: "\(key) must be a string")
        }
        return (s, line(v))
    }

    func strings(_ key: String) throws -> [(String, Int)]? {
        guard let (v, l) = value(key) else { return nil }
        if let s = v.scalar?.string { return [(s, line(v))] }
        guard let seq = v.sequence else {
            throw ConfigError(file: file, line: l, message: "\(key) must be a string or a list of strings")
        }
        return try seq.map { item in
            guard let s = item.scalar?.string else {
                throw ConfigError(file: file, line: line(item), message: "\(key) entries must be strings")
            }
            return (s, line(item))
        }
    }

    /// A decimal number as `isCanonical` takes it, or nil.
    static func decimal(_ s: String) -> Double? { isCanonical(s, fraction: true) ? Double(s) : nil }

    func number(_ key: String, range: ClosedRange<Double>) throws -> Double? {
        guard let (v, l) = value(key) else { return nil }
        guard let s = v.scalar?.string, Self.isCanonical(s, fraction: true), let d = Double(s) else {
            throw ConfigError(
                file: file, line: l, message: "\(key) must be a number written in decimal (like 10 or 0.5)")
        }
        guard range.contains(d) else {
            throw ConfigError(
                file: file, line: l, message: "\(key) must be between \(range.lowerBound) and \(range.upperBound)")
        }
        return d
    }

    /// A whole number in `range` ("1.5" and "1e3" are refused, not rounded).
    func integer(_ key: String, range: ClosedRange<Int>) throws -> Int? {
        guard let (v, l) = value(key) else { return nil }
        guard let s = v.scalar?.string, Self.isCanonical(s, fraction: false) else {
            throw ConfigError(file: file, line: l, message: "\(key) must be a whole number written in decimal")
        }
        guard let n = Int(s) else {
            throw ConfigError(
                file: file, line: l, message: "\(key) must be between \(range.lowerBound) and \(range.upperBound)")
        }
        guard range.contains(n) else {
            throw ConfigError(
                file: file, line: l, message: "\(key) must be between \(range.lowerBound) and \(range.upperBound)")
        }
        return n
    }

    /// true or false.
    func flag(_ key: String) throws -> Bool? {
        guard let (v, l) = value(key) else { return nil }
        guard let s = v.scalar?.string, let b = Bool(s) else {
            throw ConfigError(file: file, line: l, message: "\(key) must be true or false")
        }
        return b
    }

    /// A list of addresses or CIDR prefixes (an access list); empty when the key is absent.
    func prefixes(_ key: String) throws -> [Prefix] {
        try (strings(key) ?? []).map { value, line in
            guard let cidr = CIDR.parse(value) else {
                throw ConfigError(file: file, line: line, message: "\"\(value)\" is not an address or CIDR prefix")
            }
            return cidr
        }
    }
}
