import DNSWire
import Foundation
package import Protection
package import Settings
package import Steering
import Yams
package import Zones

/// The server configuration (YAML). Every key is optional; flags on the command line override it.
///
/// ```yaml
/// server:
///   listen: ["127.0.0.1:5300", "[::1]:5300"]
///   zones: zones               # folder of NAME.zone files, relative to this file
///   nsid: pop-ams-1            # RFC 5001 NSID text; default the host name, "" = no NSID
///   identity: pop-ams-1        # CH TXT id.server / hostname.bind; default the host name, "" = REFUSED
///   version: lodestar          # CH TXT version.server / version.bind; default "lodestar VERSION", "" = REFUSED
///   udp-workers: 0             # receive loops per address; 0 = one per core
///   answer-cache: 4096         # responses each UDP loop keeps for reuse; 0 = off
///   tcp-idle-timeout: 10       # seconds a TCP connection may stay silent (RFC 7766 §6.2.3)
///   tcp-max-connections: 1024  # beyond this, new connections are closed at once
///   tcp-max-connections-per-client: 32   # the same from one address
///   tcp-message-timeout: 2     # seconds for a whole message from its first octet
///   user: lodestar             # started as root: open the sockets, then run as this user
///   group: lodestar            # and group (default: the user's primary group)
/// transfer:
///   allow: ["127.0.0.1/32", "::1/128"]   # who may AXFR/IXFR; default nobody
///   concurrency: 4             # transfers at once; beyond, REFUSED
/// limits:                      # bounds on loading one zone (ZoneLimits); a zone past one is refused
///   zone-file-size: 1073741824 # octets of one file
///   zone-size: 2147483648      # octets of all a zone's files, includes counted each time read
///   zone-includes: 1024        # $INCLUDE lines followed in one zone
///   zone-line-length: 262144   # octets of one line
///   zone-records: 50000000     # records of one zone
/// ```
package struct Config: Sendable {
    package var file: String? = nil
    package var listen: [String] = Config.defaultListen {
        didSet { listenIsDefault = false }
    }
    /// The built-in addresses: one that cannot bind (no IPv6 loopback) is skipped with a warning.
    package static let defaultListen = ["127.0.0.1:5300", "[::1]:5300"]
    package private(set) var listenIsDefault = true
    package var zonesDirectory: String = "zones"
    /// Default as knot's: the host name; "" disables NSID.
    package var nsid: String? = Config.hostName
    /// Defaults as knot's: the host name and the software version; "" refuses the query.
    package var identity: String? = Config.hostName
    package var version: String? = "lodestar \(Config.softwareVersion)"
    package var udpWorkers: Int = 0
    /// Responses each UDP receive loop keeps for reuse (`AnswerCache`); 0 turns the cache off.
    package var answerCache: Int = 4096
    package var tcpIdleTimeout: Double = 10
    package var tcpMaxConnections: Int = 1024
    package var tcpMaxConnectionsPerClient: Int = 32
    package var tcpMessageTimeout: Double = 2
    package var transferAllow: [Prefix] = []
    /// The user and group to run as after the sockets are open (started as root); nil = stay.
    package var user: String? = nil
    package var group: String? = nil
    /// Peers whose PROXY protocol v2 header is trusted (`proxy-protocol.allow`); empty = off.
    package var proxyAllow: [Prefix] = []
    package var transferConcurrency: Int = 4
    /// Bounds on loading a zone (`limits:`).
    package var zoneLimits = ZoneLimits()
    /// MaxMind-format databases: City/Country (locations) and ASN.
    package var geoDatabase: String? = nil
    package var asnDatabase: String? = nil
    /// Regions, pools and load-balanced names.
    package var steering = SteeringModel()
    /// Admin API and metrics (HTTP on a loopback address); nil = off.
    package var adminListen: String? = nil
    package var adminTokenFile: String? = nil
    /// The control socket (`admin.socket`): a Unix socket, mode 0660, of the user and group the
    /// server runs as; `lodestar ctl` talks through it.
    package var adminSocket: String? = nil
    /// Where admin overrides persist across reloads and restarts.
    package var stateFile: String? = nil
    /// The prober's settings (`prober:`); the checks themselves live in `steering`'s endpoints.
    package var prober = ProberSettings()
    /// Anycast route health through BIRD (`anycast:`); nil when not configured.
    package var anycast: AnycastSettings? = nil
    /// Shared overrides and health votes through etcd (`cluster:`); nil when not configured.
    package var cluster: ClusterSettings? = nil
    /// Where `cluster.tls` is, for the errors of loading its certificates (done by the server).
    package var clusterTLSLine = 0
    /// Response rate limiting over UDP (`rate-limit:`), on by default.
    package var rateLimit = RateLimitSettings()
    package var rateLimitExempt: [Prefix] = []
    /// DNS cookies (`cookies:`), on by default; the secret is random per process unless configured.
    package var cookies = true
    package var cookieSecret: CookieSecret? = nil

    package init() {}

    /// The version `lodestar --version` and CH TXT version.bind report.
    package static let softwareVersion = SoftwareVersion.current

    static var hostName: String {
        var buf = [CChar](repeating: 0, count: 256)
        gethostname(&buf, 255)
        return String(cString: buf)
    }

    /// Loads and validates a config file; every problem carries its line.
    /// A config file larger than this is refused unread (the largest real ones are a few hundred KB).
    package static let maxFileSize = 64 << 20

    package static func load(_ path: String) throws -> Config {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        if let type = attributes?[.type] as? FileAttributeType, type != .typeRegular {
            throw ConfigError(file: path, line: 0, message: "the config file is not a regular file")
        }
        if let size = attributes?[.size] as? Int, size > maxFileSize {
            throw ConfigError(file: path, line: 0, message: "config file of \(size) octets (at most \(maxFileSize))")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason = access(path, R_OK) == 0 ? "" : ": \(String(cString: strerror(errno)))"
            throw ConfigError(file: path, line: 0, message: "cannot read the config file\(reason)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(file: path, line: 0, message: "the config file is not UTF-8 text")
        }
        if let nul = text.utf8.firstIndex(of: 0) {
            let line = text.utf8[..<nul].filter { $0 == 0x0A }.count + 1
            throw ConfigError(
                file: path, line: line, message: "a NUL octet in the config file (a binary or damaged file?)")
        }
        if let line = YAMLDepth.tooDeep(text) {
            throw ConfigError(file: path, line: line, message: "YAML nested more than \(YAMLDepth.limit) levels deep")
        }
        var config = Config()
        config.file = path
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw ConfigError(file: path, line: Self.line(of: error), message: "invalid YAML: \(error)")
        }
        // An empty file (or only comments) is a half-written one far more often than a wish for
        // every default: refused, so that a reload cannot silently drop every name.
        guard let root, root.mapping.map({ !$0.isEmpty }) ?? true else {
            throw ConfigError(
                file: path, line: 0,
                message:
                    "the config file is empty (a truncated write?); an empty mapping {} is refused too: give at least one key"
            )
        }
        let base = URL(fileURLWithPath: path).deletingLastPathComponent().path
        let top = try Section(root, file: path, name: "top level")
        try top.allow(
            ["server", "transfer", "anycast", "cluster", "limits"] + Config.steeringKeys + Config.protectionKeys)
        if let server = try top.section("server") {
            try server.allow([
                "listen", "zones", "nsid", "identity", "version", "udp-workers", "answer-cache",
                "tcp-idle-timeout", "tcp-max-connections", "tcp-max-connections-per-client",
                "tcp-message-timeout", "user", "group"
            ])
            if let listen = try server.strings("listen") {
                for (value, line) in listen {
                    guard ListenAddress.parse(value) != nil else {
                        throw ConfigError(
                            file: path, line: line, message: "listen address \"\(value)\" is not ADDR:PORT")
                    }
                }
                config.listen = listen.map(\.0)
            }
            if let (zones, _) = try server.string("zones") {
                config.zonesDirectory = zones.hasPrefix("/") ? zones : (base as NSString).appendingPathComponent(zones)
            } else {
                config.zonesDirectory = (base as NSString).appendingPathComponent("zones")
            }
            if let (v, _) = try server.string("nsid") { config.nsid = v }
            if let (v, _) = try server.string("identity") { config.identity = v }
            if let (v, _) = try server.string("version") { config.version = v }
            if let v = try server.integer("udp-workers", range: 0...256) { config.udpWorkers = v }
            if let v = try server.integer("answer-cache", range: 0...1_048_576) { config.answerCache = v }
            if let v = try server.number("tcp-idle-timeout", range: 0.1...3600) { config.tcpIdleTimeout = v }
            if let v = try server.integer("tcp-max-connections", range: 1...1_000_000) { config.tcpMaxConnections = v }
            if let v = try server.integer("tcp-max-connections-per-client", range: 1...1_000_000) {
                config.tcpMaxConnectionsPerClient = v
            }
            if let v = try server.number("tcp-message-timeout", range: 0.1...120) { config.tcpMessageTimeout = v }
            for key in ["user", "group"] {
                guard let (v, line) = try server.string(key) else { continue }
                guard !v.isEmpty, v.utf8.count <= 64, !v.contains(where: { $0.isWhitespace || $0 == ":" || $0 == "/" })
                else {
                    throw ConfigError(file: path, line: line, message: "\(key) \"\(v)\" is not a \(key) name")
                }
                if key == "user" { config.user = v } else { config.group = v }
            }
        } else {
            config.zonesDirectory = (base as NSString).appendingPathComponent("zones")
        }
        if let transfer = try top.section("transfer") {
            try transfer.allow(["allow", "concurrency"])
            if let v = try transfer.integer("concurrency", range: 1...1000) { config.transferConcurrency = v }
            config.transferAllow = try transfer.prefixes("allow")
        }
        if let limits = try top.section("limits") {
            try limits.allow(["zone-file-size", "zone-size", "zone-includes", "zone-line-length", "zone-records"])
            let max = 1 << 40
            if let v = try limits.integer("zone-file-size", range: 1...max) { config.zoneLimits.fileSize = v }
            if let v = try limits.integer("zone-size", range: 1...max) { config.zoneLimits.zoneSize = v }
            if let v = try limits.integer("zone-includes", range: 0...1_000_000) { config.zoneLimits.includes = v }
            if let v = try limits.integer("zone-line-length", range: 1024...(1 << 30)) {
                config.zoneLimits.lineLength = v
            }
            if let v = try limits.integer("zone-records", range: 1...(1 << 34)) { config.zoneLimits.records = v }
        }
        try config.loadSteering(top, base: base)
        try config.loadAnycast(top, base: base)
        try config.loadCluster(top, base: base)
        try config.loadProtection(top)
        return config
    }

    static func line(of error: YamlError) -> Int {
        switch error {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _):
            return mark.line
        default:
            return 0
        }
    }
}
