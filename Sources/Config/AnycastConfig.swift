import DNSWire
import Foundation
import Health
import Settings
import Steering
import Yams

/// The `anycast:` section: the prefixes this node announces through BIRD, and when.
///
/// ```yaml
/// anycast:
///   socket: /run/bird/bird.ctl             # BIRD's control socket
///   include-file: /etc/bird/lodestar.conf  # the durable mirror, included by bird.conf
///   self-check: { query: example.com, qtype: SOA, interval: 1, timeout: 0.5, rise: 2, fall: 3 }
///   drain-time: 0                          # seconds of GRACEFUL_SHUTDOWN before a withdrawal
///   shutdown-delay: 5                      # on SIGTERM: withdraw, answer this long, stop
///   reassert: 30
///   prefixes:
///     - { prefix: 198.51.100.53/32, protocol: lodestar_v4, require-pools: [na], min-other-paths: 1, export-protocol: upstream }
/// ```
extension Config {
    mutating func loadAnycast(_ top: Section, base: String) throws {
        guard let s = try top.section("anycast") else { return }
        let file = s.file
        func path(_ p: String) -> String { p.hasPrefix("/") ? p : (base as NSString).appendingPathComponent(p) }
        try s.allow(["socket", "include-file", "self-check", "reassert", "drain-time", "shutdown-delay", "prefixes"])
        guard let (inc, _) = try s.string("include-file") else {
            throw ConfigError(
                file: file, line: s.line(s.node),
                message: "anycast needs an include-file (the durable mirror BIRD includes)")
        }
        // The self-check: a DNS query to this server; the address defaults to the first listen address.
        var check = CheckSpec(kind: .dns, address: "", port: 0)
        check.qtype = 1
        check.interval = 1
        check.timeout = 0.5
        check.jitter = 0
        check.expectAnswer = true
        check.query = steering.names.first?.name ?? ""
        if let c = try s.section("self-check") {
            try c.allow(["address", "port", "query", "qtype", "interval", "timeout", "rise", "fall"])
            if let (a, al) = try c.string("address") {
                guard IPAddress.parse(a) != nil else {
                    throw ConfigError(file: file, line: al, message: "self-check address \"\(a)\" is not an IP address")
                }
                check.address = a
            }
            if let p = try c.number("port", range: 1...65535) { check.port = Int(p) }
            _ = try c.dnsQuestion(&check, defaultType: 1)
            try c.checkTiming(&check, defaultInterval: 1, maxTimeout: 0.5, line: c.line(c.node))
        }
        guard !check.query.isEmpty else {
            throw ConfigError(
                file: file, line: s.line(s.node),
                message: "anycast self-check needs a query (a name this server answers)")
        }
        var a = AnycastSettings(includeFile: path(inc), selfCheck: check)
        if let (v, _) = try s.string("socket") { a.socket = path(v) }
        a.reassert = try s.number("reassert", range: 1...3600) ?? 30
        a.drainTime = try s.number("drain-time", range: 0...3600) ?? 0
        a.shutdownDelay = try s.number("shutdown-delay", range: 0...3600) ?? 5
        guard let (list, ll) = s.value("prefixes"), let seq = list.sequence, !seq.isEmpty else {
            throw ConfigError(file: file, line: s.line(s.node), message: "anycast needs a list of prefixes")
        }
        _ = ll
        for item in seq {
            let p = try Section(item, file: file, name: "anycast prefix")
            try p.allow(["prefix", "protocol", "require-pools", "require-regions", "min-other-paths", "export-protocol"]
            )
            let l = p.line(item)
            guard let (text, tl) = try p.string("prefix"), let parsed = CIDR.parse(text) else {
                throw ConfigError(file: file, line: l, message: "an anycast prefix needs `prefix: ADDRESS/LENGTH`")
            }
            _ = tl
            guard let (proto, pl) = try p.string("protocol"), BirdNames.isSymbol(proto) else {
                throw ConfigError(
                    file: file, line: l,
                    message:
                        "an anycast prefix needs `protocol:`, the name of its BIRD static protocol (letters, digits, _)"
                )
            }
            if a.prefixes.contains(where: { $0.proto == proto }) {
                throw ConfigError(file: file, line: pl, message: "protocol \(proto) is listed twice")
            }
            // Canonical text, as BIRD prints it (`show route`), host bits cleared.
            var bytes: [UInt8] = (0..<8).map { UInt8(truncatingIfNeeded: parsed.high >> (56 - 8 * UInt64($0))) }
            bytes += (0..<8).map { UInt8(truncatingIfNeeded: parsed.low >> (56 - 8 * UInt64($0))) }
            let canonical = IPAddress.format(Array(bytes.prefix(parsed.family == 4 ? 4 : 16))) + "/\(parsed.length)"
            var entry = AnycastSettings.Prefix(prefix: canonical, proto: proto)
            for (pool, line) in try p.strings("require-pools") ?? [] {
                guard steering.pool(named: pool) != nil else {
                    throw ConfigError(file: file, line: line, message: "unknown pool \"\(pool)\"")
                }
                entry.requirePools.append(pool)
            }
            for (region, line) in try p.strings("require-regions") ?? [] {
                guard steering.region(named: region) != nil else {
                    throw ConfigError(file: file, line: line, message: "unknown region \"\(region)\"")
                }
                entry.requireRegions.append(region)
            }
            entry.minOtherPaths = Int(try p.number("min-other-paths", range: 0...1000) ?? 0)
            if let (e, el) = try p.string("export-protocol") {
                guard BirdNames.isSymbol(e) else {
                    throw ConfigError(file: file, line: el, message: "export-protocol must be a BIRD protocol name")
                }
                entry.exportProtocol = e
            }
            a.prefixes.append(entry)
        }
        anycast = a
    }
}
