import DNSWire
import Foundation
import Health
import Settings
import Yams

/// Health checks in the config: named templates under `checks:`, used (or written inline) by pools
/// and endpoints, and the `prober:` settings.
///
/// ```yaml
/// prober:
///   concurrency: 64          # checks in flight at once
///   cold-start-timeout: 5    # the first round before answering may take this long
///   resume-max-age: 300      # health persisted in the state file younger than this is resumed
///   external-file: health.txt  # lines "ENDPOINT up|down [reason]", watched
///   external-stale-after: 60 # seconds; older external input is ignored
/// checks:
///   web: { type: http, port: 8080, path: /health, expect-body: ok, interval: 10, rise: 2, fall: 3 }
/// pools:
///   na:
///     check: web             # or a list under `checks:` with `check-mode: all|any`
///     endpoints:
///       - { name: na-1, address: 192.0.2.11, probe: 10.0.0.11 }   # probe another address
/// ```
extension Config {
    static let checkKeys = [
        "type", "address", "port", "interval", "timeout", "rise", "fall", "jitter", "damping",
        "path", "host", "sni", "expect-status", "expect-body", "tls-verify", "ca-file",
        "cert-min-days", "query", "qtype", "expect-rcode", "expect-answer", "source"
    ]

    mutating func loadProber(_ top: Section, base: String) throws {
        func path(_ p: String) -> String { p.hasPrefix("/") ? p : (base as NSString).appendingPathComponent(p) }
        guard let s = try top.section("prober") else { return }
        try s.allow(["concurrency", "cold-start-timeout", "resume-max-age", "external-file", "external-stale-after"])
        if let v = try s.number("concurrency", range: 1...4096) { prober.concurrency = Int(v) }
        if let v = try s.number("cold-start-timeout", range: 0...600) { prober.coldStartTimeout = v }
        if let v = try s.number("resume-max-age", range: 0...86400 * 7) { prober.resumeMaxAge = v }
        if let (v, _) = try s.string("external-file") { prober.externalFile = path(v) }
        if let v = try s.number("external-stale-after", range: 1...86400 * 7) { prober.externalStaleAfter = v }
    }

    /// The check templates under `checks:`, by name (unresolved: no address yet).
    static func checkTemplates(_ top: Section) throws -> [String: (Node, Int)] {
        guard let s = try top.section("checks") else { return [:] }
        var out: [String: (Node, Int)] = [:]
        for (name, node, line) in try s.entries() {
            _ = try Section(node, file: s.file, name: "check \(name)")
            out[name] = (node, line)
        }
        return out
    }
}

extension Section {
    /// The checks of a pool or endpoint: `check:` (a template name or a mapping) or `checks:` (a
    /// list of those), and `check-mode`; nil when neither key is present.
    func checks(templates: [String: (Node, Int)], address: String?, owner: String) throws -> ([CheckSpec], CheckMode)? {
        var nodes: [Node] = []
        if let (v, _) = value("check") { nodes.append(v) }
        if let (v, l) = value("checks") {
            guard let seq = v.sequence else {
                throw ConfigError(file: file, line: l, message: "checks of \(owner) must be a list")
            }
            nodes += seq
        }
        var mode = CheckMode.all
        if let (m, l) = try string("check-mode") {
            guard let v = CheckMode(rawValue: m) else {
                throw ConfigError(file: file, line: l, message: "check-mode must be all or any")
            }
            mode = v
        }
        guard value("check") != nil || value("checks") != nil else { return nil }
        return (try nodes.map { try check($0, templates: templates, address: address, owner: owner) }, mode)
    }

    /// One check from a template name or a mapping, probing `address` unless it names its own.
    func check(_ node: Node, templates: [String: (Node, Int)], address: String?, owner: String) throws -> CheckSpec {
        var node = node
        if let name = node.scalar?.string {
            guard let t = templates[name] else {
                throw ConfigError(
                    file: file, line: line(node),
                    message: "unknown check \"\(name)\" (known: \(templates.keys.sorted().joined(separator: ", ")))")
            }
            node = t.0
        }
        let c = try Section(node, file: file, name: "check of \(owner)")
        try c.allow(Config.checkKeys)
        let l = line(node)
        guard let (kindText, kl) = try c.string("type") else {
            throw ConfigError(
                file: file, line: l,
                message: "a check needs a type (\(CheckSpec.Kind.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard let kind = CheckSpec.Kind(rawValue: kindText) else {
            throw ConfigError(
                file: file, line: kl,
                message:
                    "unknown check type \"\(kindText)\" (known: \(CheckSpec.Kind.allCases.map(\.rawValue).joined(separator: ", ")))"
            )
        }
        let target: String
        if let (a, al) = try c.string("address") {
            guard IPAddress.parse(a) != nil else {
                throw ConfigError(
                    file: file, line: al, message: "check address \"\(a)\" is not an IPv4 or IPv6 address")
            }
            target = a
        } else if let address {
            target = address
        } else {
            throw ConfigError(
                file: file, line: l,
                message:
                    "\(owner) answers with a CNAME: its check needs an address to probe (`probe:` on the endpoint or `address:` in the check)"
            )
        }
        let defaultPort: Int? = [.http: 80, .https: 443, .dns: 53][kind]
        guard let port = try c.number("port", range: 1...65535).map(Int.init) ?? defaultPort else {
            throw ConfigError(file: file, line: l, message: "a tcp check needs a port")
        }
        var s = CheckSpec(kind: kind, address: target, port: port)
        try c.checkTiming(&s, defaultInterval: 10, maxTimeout: 5, line: l)
        s.jitter = try c.number("jitter", range: 0...0.5) ?? 0.1
        if let (v, vl) = try c.string("damping") {
            guard let b = Bool(v) else {
                throw ConfigError(file: file, line: vl, message: "damping must be true or false")
            }
            if !b { s.policy.suppress = .infinity }
        }
        if kind == .http || kind == .https {
            if let (p, pl) = try c.string("path") {
                guard p.hasPrefix("/"), !p.contains(where: { $0.isWhitespace || $0.isNewline }) else {
                    throw ConfigError(
                        file: file, line: pl, message: "path \"\(p)\" must start with / and hold no spaces")
                }
                s.path = p
            }
            if let (h, hl) = try c.string("host") {
                guard !h.isEmpty, !h.contains(where: { $0.isWhitespace || $0.isNewline }) else {
                    throw ConfigError(file: file, line: hl, message: "host \"\(h)\" is not a host name")
                }
                s.host = h
            }
            if let (v, _) = try c.string("sni") { s.sni = v }
            if let (v, vl) = try c.string("source") {
                guard IPAddress.parse(v) != nil else {
                    throw ConfigError(file: file, line: vl, message: "source \"\(v)\" is not an IP address")
                }
                s.source = v
            }
            if let list = try c.strings("expect-status") {
                s.expectStatus = try list.map { (text, sl) in
                    let parts = text.split(separator: "-", omittingEmptySubsequences: false).map {
                        Int($0.trimmingCharacters(in: .whitespaces))
                    }
                    guard (1...2).contains(parts.count), let lo = parts[0], let hi = parts.last!,
                        (100...999).contains(lo),
                        (lo...999).contains(hi)
                    else {
                        throw ConfigError(
                            file: file, line: sl, message: "expect-status entries are codes (200) or ranges (200-299)")
                    }
                    return lo...hi
                }
            }
            if let (v, _) = try c.string("expect-body") { s.expectBody = v }
            if let (v, vl) = try c.string("tls-verify") {
                guard let b = Bool(v) else {
                    throw ConfigError(file: file, line: vl, message: "tls-verify must be true or false")
                }
                s.verifyTLS = b
            }
            if let (given, vl) = try c.string("ca-file") {
                let v =
                    given.hasPrefix("/")
                    ? given
                    : ((file as NSString).deletingLastPathComponent as NSString).appendingPathComponent(given)
                guard FileManager.default.isReadableFile(atPath: v) else {
                    throw ConfigError(file: file, line: vl, message: "ca-file \(v) cannot be read")
                }
                s.caFile = v
            }
            s.certMinDays = try c.number("cert-min-days", range: 0...3650) ?? 0
        }
        if kind == .dns {
            guard try c.dnsQuestion(&s, defaultType: 6) else {
                throw ConfigError(file: file, line: l, message: "a dns check needs a query name")
            }
            if let list = try c.strings("expect-rcode") {
                s.expectRcode = try list.map { (t, tl) in
                    guard let code = Rcode.code(t) else {
                        throw ConfigError(
                            file: file, line: tl,
                            message:
                                "expect-rcode entries are rcode names (\(Rcode.names.prefix(6).joined(separator: ", ")), …)"
                        )
                    }
                    return code
                }
            }
            if let (v, vl) = try c.string("expect-answer") {
                guard let b = Bool(v) else {
                    throw ConfigError(file: file, line: vl, message: "expect-answer must be true or false")
                }
                s.expectAnswer = b
            }
        }
        return s
    }

    /// `interval`, `timeout` (default half the interval, at most `maxTimeout`; never longer than
    /// the interval), `rise` and `fall` of a check.
    func checkTiming(_ s: inout CheckSpec, defaultInterval: Double, maxTimeout: Double, line: Int) throws {
        s.interval = try number("interval", range: 0.1...3600) ?? defaultInterval
        s.timeout = try number("timeout", range: 0.05...3600) ?? min(maxTimeout, s.interval / 2)
        if s.timeout > s.interval {
            throw ConfigError(
                file: file, line: line, message: "timeout \(s.timeout) s is longer than the interval \(s.interval) s")
        }
        if let v = try number("rise", range: 1...100) { s.policy.rise = Int(v) }
        if let v = try number("fall", range: 1...100) { s.policy.fall = Int(v) }
    }

    /// `query` and `qtype` of a DNS check; false when no query is given (the spec keeps its own).
    func dnsQuestion(_ s: inout CheckSpec, defaultType: UInt16) throws -> Bool {
        if let (t, tl) = try string("qtype") {
            guard let v = RRType.code(t) else { throw ConfigError(file: file, line: tl, message: "unknown qtype \(t)") }
            s.qtype = v
        } else {
            s.qtype = defaultType
        }
        guard let (q, ql) = try string("query") else { return false }
        guard Name.fromText(q.hasSuffix(".") ? q : q + ".") != nil else {
            throw ConfigError(file: file, line: ql, message: "\"\(q)\" is not a domain name")
        }
        s.query = q
        return true
    }
}
