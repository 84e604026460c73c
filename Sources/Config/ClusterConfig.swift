import Foundation
import Settings
import Steering

/// The `cluster:` section: many POPs sharing overrides and health votes through etcd.
///
/// ```yaml
/// cluster:
///   etcd: ["https://10.0.0.1:2379", "https://10.0.0.2:2379", "https://10.0.0.3:2379"]
///   tls: { ca: etcd-ca.pem, cert: pop.pem, key: pop.key }   # https:// endpoints: CA, client certificate
///   prefix: /lodestar/prod        # one deployment per prefix
///   pop: ams-1                    # this POP's name (default: the host name)
///   user: lodestar                # etcd authentication, with the password in a file
///   password-file: etcd.password
///   lease-ttl: 10                 # this POP's votes vanish this long after it stops
///   heartbeat: 5                  # votes re-written this often (and on every transition)
///   timeout: 2                    # per request to etcd
///   compaction: 300               # etcd's history compacted this often by one POP (0: never)
///   health:
///     policy: quorum              # local | quorum | any-up | all-up
///     quorum: 0.5                 # down when more than this fraction of voting POPs say down
///     stale-after: 20             # votes older than this do not count
///     fallback-after: 30          # etcd away this long: this POP's own verdicts decide
///     local-veto: [na-1]          # endpoints this POP's own verdict decides alone
///     rtt: local                  # the latency step: this POP's RTTs (local) or the POPs' mean
/// ```
extension Config {
    mutating func loadCluster(_ top: Section, base: String) throws {
        guard let s = try top.section("cluster") else { return }
        let file = s.file
        try s.allow([
            "etcd", "tls", "prefix", "pop", "user", "password-file", "lease-ttl", "heartbeat", "timeout", "compaction",
            "health"
        ])
        func path(_ f: String) -> String { f.hasPrefix("/") ? f : (base as NSString).appendingPathComponent(f) }
        var c = ClusterSettings()
        guard let list = try s.strings("etcd"), !list.isEmpty else {
            throw ConfigError(
                file: file, line: s.line(s.node),
                message: "cluster needs etcd: a list of http:// or https://ADDRESS:PORT client URLs")
        }
        for (text, line) in list {
            guard let e = EtcdEndpoint.parse(text) else {
                throw ConfigError(
                    file: file, line: line,
                    message: "etcd \"\(text)\" is not http://ADDRESS:PORT or https://ADDRESS:PORT (an IP address)")
            }
            c.endpoints.append(e)
        }
        if let t = try s.section("tls") {
            try t.allow(["ca", "cert", "key"])
            for key in ["ca", "cert", "key"] {
                guard let (f, line) = try t.string(key) else { continue }
                let p = path(f)
                guard FileManager.default.isReadableFile(atPath: p) else {
                    throw ConfigError(file: file, line: line, message: "\(p): cannot read the etcd TLS \(key) file")
                }
                switch key {
                case "ca": c.tls.caFile = p
                case "cert": c.tls.certFile = p
                default: c.tls.keyFile = p
                }
            }
            if (c.tls.certFile == nil) != (c.tls.keyFile == nil) {
                throw ConfigError(file: file, line: t.line(t.node), message: "tls needs both cert and key, or neither")
            }
            // A file that is not PEM of the right kind is a config error with its line, not a
            // failure at every connection. The server loads the certificates themselves at start
            // and at each reload (`LodestarServer.checkTLS`), naming this line.
            for (key, p, label) in [
                ("ca", c.tls.caFile, "CERTIFICATE"), ("cert", c.tls.certFile, "CERTIFICATE"),
                ("key", c.tls.keyFile, "PRIVATE KEY")
            ] {
                guard let p else { continue }
                guard let data = FileManager.default.contents(atPath: p), data.count <= 1 << 20,
                    let text = String(data: data, encoding: .utf8),
                    text.contains("-----BEGIN "), text.contains(label + "-----")
                else {
                    throw ConfigError(
                        file: file, line: t.line(t.node),
                        message: "etcd TLS: \(p) is not a PEM \(label.lowercased()) file (\(key))")
                }
            }
            clusterTLSLine = t.line(t.node)
        }
        if let (p, line) = try s.string("prefix") {
            guard p.hasPrefix("/"), p.count > 1, !p.contains("//"), p.utf8.count <= 256 else {
                throw ConfigError(
                    file: file, line: line,
                    message: "cluster prefix \"\(p)\" must start with / and name a folder, like /lodestar/prod")
            }
            c.prefix = p
        }
        c.pop = Config.hostName
        if let (p, line) = try s.string("pop") {
            guard !p.isEmpty, p.utf8.count <= 64, !p.contains(where: { $0 == "/" || $0.isWhitespace }) else {
                throw ConfigError(
                    file: file, line: line,
                    message: "pop \"\(p)\" must be a name without / or spaces, up to 64 characters")
            }
            c.pop = p
        }
        if let (u, _) = try s.string("user") { c.user = u }
        if let (f, line) = try s.string("password-file") {
            let path = f.hasPrefix("/") ? f : (base as NSString).appendingPathComponent(f)
            guard let data = FileManager.default.contents(atPath: path),
                let pw = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines),
                !pw.isEmpty
            else { throw ConfigError(file: file, line: line, message: "\(path): cannot read the etcd password") }
            c.password = pw
        }
        if c.user != nil && c.password == nil {
            throw ConfigError(file: file, line: s.line(s.node), message: "cluster user needs a password-file")
        }
        if let v = try s.integer("lease-ttl", range: 2...3600) { c.leaseTTL = v }
        if let v = try s.number("heartbeat", range: 0.5...3600) { c.heartbeat = v }
        if let v = try s.number("timeout", range: 0.1...60) { c.timeout = v }
        if let v = try s.number("compaction", range: 0...86400) {
            guard v == 0 || v >= 1 else {
                throw ConfigError(
                    file: file, line: s.value("compaction")?.1 ?? s.line(s.node),
                    message: "compaction must be 0 (never) or at least 1 second")
            }
            c.compaction = v
        }
        if let h = try s.section("health") {
            try h.allow(["policy", "quorum", "stale-after", "fallback-after", "local-veto", "rtt"])
            if let (r, line) = try h.string("rtt") {
                guard r == "local" || r == "mean" else {
                    throw ConfigError(file: file, line: line, message: "rtt must be local or mean")
                }
                c.rttMean = r == "mean"
            }
            if let (p, line) = try h.string("policy") {
                guard let policy = HealthPolicy(rawValue: p) else {
                    throw ConfigError(
                        file: file, line: line, message: "health policy \"\(p)\" is not local, quorum, any-up or all-up"
                    )
                }
                c.policy = policy
            }
            if let v = try h.number("quorum", range: 0...0.99) { c.quorum = v }
            if let v = try h.number("stale-after", range: 1...86400) { c.staleAfter = v }
            if let v = try h.number("fallback-after", range: 0...86400) { c.fallbackAfter = v }
            for (name, line) in try h.strings("local-veto") ?? [] {
                guard steering.endpoint(named: name) != nil else {
                    throw ConfigError(file: file, line: line, message: "local-veto: no endpoint named \(name)")
                }
                c.localVeto.insert(name)
            }
        }
        if c.staleAfter < c.heartbeat * 2 {
            throw ConfigError(
                file: file, line: s.line(s.node),
                message:
                    "stale-after (\(c.staleAfter) s) must be at least twice the heartbeat (\(c.heartbeat) s), or fresh votes count as stale"
            )
        }
        cluster = c
    }
}
