import Anycast
import CLodestarSys
import DNSWire
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Prober
import Steering
import Synchronization

/// The admin API and Prometheus metrics: JSON over HTTP/1.1 on a loopback address.
///
/// - `GET /v1/state`: every region, pool and endpoint: health and why, configured and effective
///   weight, slow-start progress, share of recent answers; the overrides in force.
/// - `POST /v1/{regions|pools|endpoints}/NAME` with `{"state": "up"|"down"|"drain"|"auto", "weight": N|null}`:
///   an override (persisted in the state file; `auto` and `null` clear it).
/// - `POST /v1/health/NAME` with `{"state": "up"|"down"|"auto", "reason": "…", "ttl": seconds}`: external
///   health input for an endpoint checked elsewhere; ignored after `ttl` (default `external-stale-after`).
/// - `GET /v1/anycast`: every anycast prefix: desired, BIRD's and exported state, reason, alarm.
/// - `POST /v1/anycast/PROTOCOL` with `{"state": "withdraw"|"auto"}`: withdraw for maintenance.
/// - `POST /v1/reload`: as SIGHUP; answers with the outcome.
/// - `GET /v1/explain?name=N&type=T&client=IP[/LEN]`: as `lodestar explain`, with live health.
/// - `GET /metrics`: Prometheus text.
/// With a token file configured, every request needs `Authorization: Bearer TOKEN`.
final class AdminServer: @unchecked Sendable {
    unowned let server: LodestarServer
    let token: String?
    let logger: Logger
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    var channel: Channel? = nil
    let shares = ShareWindow()
    var timer: RepeatedTask? = nil

    init(server: LodestarServer, token: String?, logger: Logger) {
        self.server = server
        self.token = token
        self.logger = logger
    }

    static func readToken(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path),
            let t = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines), !t.isEmpty
        else { throw ServerError("\(path): cannot read the admin token (an empty file is not a token)") }
        return t
    }

    func start(_ address: ListenAddress) throws {
        guard token != nil || address.isLoopback else {
            throw ServerError("admin listen address \(address) is not loopback: configure admin.token-file to expose it")
        }
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [self] channel in
                channel.pipeline.configureHTTPServerPipeline(withErrorHandling: true).flatMap {
                    channel.pipeline.addHandler(AdminHandler(admin: self))
                }
            }
        do {
            channel = try bootstrap.bind(host: address.host, port: address.port).wait()
        } catch {
            throw ServerError("cannot listen on admin address \(address): \(error)")
        }
        // Sample answer counters every 5 s: "share of recent answers" covers the last minute.
        timer = group.next().scheduleRepeatedTask(initialDelay: .zero, delay: .seconds(5)) { [self] _ in
            shares.sample(server.store.current.steering)
        }
    }

    func stop() {
        timer?.cancel()
        try? channel?.close().wait()
        try? group.syncShutdownGracefully()
    }

    struct Response {
        var status: HTTPResponseStatus
        var body: String
        var contentType = "application/json"
    }

    static func json<T: Encodable>(_ value: T, status: HTTPResponseStatus = .ok) -> Response {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        let body = (try? enc.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return Response(status: status, body: body + "\n")
    }

    static func error(_ status: HTTPResponseStatus, _ message: String) -> Response {
        json(["error": message], status: status)
    }

    func handle(method: HTTPMethod, uri: String, headers: HTTPHeaders, body: [UInt8]) -> Response {
        if let token {
            guard headers["authorization"].first == "Bearer \(token)" else {
                return Self.error(.unauthorized, "a bearer token is required")
            }
        }
        let parts = uri.split(separator: "?", maxSplits: 1)
        let path = String(parts.first ?? "")
        var query: [String: String] = [:]
        if parts.count == 2 {
            for pair in parts[1].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? String($0) }
                if kv.count == 2 { query[kv[0]] = kv[1] }
            }
        }
        let segments = path.split(separator: "/").map(String.init)
        switch (method, segments) {
        case (.GET, ["metrics"]):
            return Response(status: .ok, body: metrics(), contentType: "text/plain; version=0.0.4")
        case (.GET, ["v1", "state"]):
            return Self.json(state())
        case (.POST, ["v1", "reload"]):
            switch server.reload() {
            case .success(let g): return Self.json(["result": "reloaded", "generation": "\(g)"])
            case .failure(let e): return Self.json(["result": "failed", "error": "\(e)"], status: .unprocessableEntity)
            }
        case (.GET, ["v1", "explain"]):
            guard let name = query["name"], let client = query["client"] else {
                return Self.error(.badRequest, "explain needs name and client (type is optional)")
            }
            do {
                return Self.json(try Explainer.explain(server.store.current, name: name, type: query["type"] ?? "A", client: client))
            } catch {
                return Self.error(.badRequest, "\(error)")
            }
        case (.GET, ["v1", "anycast"]):
            guard let a = server.anycast else { return Self.error(.notFound, "anycast is not configured") }
            return Self.json(a.status())
        case (.POST, let s) where s.count == 3 && s[0] == "v1" && s[1] == "anycast":
            guard let a = server.anycast else { return Self.error(.notFound, "anycast is not configured") }
            let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]
            let withdraw: Bool?
            switch object?["state"] as? String {
            case "withdraw"?: withdraw = true
            case "auto"?: withdraw = nil
            default: return Self.error(.badRequest, "the body must be {\"state\": \"withdraw\"} or {\"state\": \"auto\"}")
            }
            guard a.setOverride(proto: s[2], withdraw: withdraw) else { return Self.error(.notFound, "no anycast protocol named \(s[2])") }
            return Self.json(a.status())
        case (.POST, let s) where s.count == 3 && s[0] == "v1" && s[1] == "health":
            return external(name: s[2], body: body)
        case (.POST, let s) where s.count == 3 && s[0] == "v1":
            guard let kind = HealthController.Kind(rawValue: s[1]) else {
                return Self.error(.notFound, "unknown path \(path)")
            }
            return override(kind, name: s[2], body: body)
        case (.GET, _), (.POST, _):
            return Self.error(.notFound, "unknown path \(path)")
        default:
            return Self.error(.methodNotAllowed, "use GET or POST")
        }
    }

    func override(_ kind: HealthController.Kind, name: String, body: [UInt8]) -> Response {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] else {
            return Self.error(.badRequest, "the body must be a JSON object like {\"state\": \"down\"} or {\"weight\": 10}")
        }
        var newState: AdminOverride.State?? = nil
        var weight: Double?? = nil
        for key in object.keys where key != "state" && key != "weight" {
            return Self.error(.badRequest, "unknown key \(key) (known: state, weight)")
        }
        if let s = object["state"] {
            switch s as? String {
            case "auto"?: newState = .some(nil)
            case let v? where AdminOverride.State(rawValue: v) != nil: newState = .some(AdminOverride.State(rawValue: v))
            default: return Self.error(.badRequest, "state must be up, down, drain or auto")
            }
        }
        if let w = object["weight"] {
            if w is NSNull {
                weight = .some(nil)
            } else if let d = (w as? NSNumber)?.doubleValue, d >= 0, d <= 1_000_000 {
                weight = .some(d)
            } else {
                return Self.error(.badRequest, "weight must be a number from 0 to 1000000, or null")
            }
        }
        do {
            try server.health.set(kind, name: name, state: newState, weight: weight)
        } catch let f as HealthController.Failure {
            return Self.error(HTTPResponseStatus(statusCode: f.status), f.description)
        } catch {
            return Self.error(.internalServerError, "\(error)")
        }
        return Self.json(state())
    }

    func external(name: String, body: [UInt8]) -> Response {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] else {
            return Self.error(.badRequest, "the body must be a JSON object like {\"state\": \"down\", \"reason\": \"…\", \"ttl\": 60}")
        }
        for key in object.keys where !["state", "reason", "ttl"].contains(key) {
            return Self.error(.badRequest, "unknown key \(key) (known: state, reason, ttl)")
        }
        let up: Bool?
        switch object["state"] as? String {
        case "up"?: up = true
        case "down"?: up = false
        case "auto"?: up = nil
        default: return Self.error(.badRequest, "state must be up, down or auto")
        }
        var ttl: Double? = nil
        if let t = object["ttl"] {
            guard let d = (t as? NSNumber)?.doubleValue, d > 0, d <= 86400 * 7 else {
                return Self.error(.badRequest, "ttl must be a number of seconds from 1 to 604800")
            }
            ttl = d
        }
        let reason = (object["reason"] as? String) ?? (up == true ? "up" : "down")
        guard server.prober.setExternal(endpoint: name, up: up, reason: "\(reason) (admin API)", ttl: ttl) else {
            return Self.error(.notFound, "no endpoint named \(name)")
        }
        logger.notice("external health: \(name) → \(up.map { $0 ? "up" : "down" } ?? "auto") (\(reason))")
        return Self.json(state())
    }

    struct CheckState: Encodable {
        var target: String, type: String, up: Bool?, reason: String
        var rttMs: Double?, lastRttMs: Double?, flapPenalty: Double, heldDown: Bool, flaps: Int
        var runs: Int, failures: [String: Int], certDaysLeft: Double?, secondsSinceLast: Double?
    }

    struct ExternalState: Encodable {
        var up: Bool, reason: String, expiresInSeconds: Double
    }

    struct EndpointState: Encodable {
        var name: String, pool: String, region: String, target: String
        var up: Bool, reason: String
        var configuredWeight: Double, effectiveWeight: Double
        var slowStart: Double
        var answers: UInt64, share: Double
        var checks: [CheckState]
        var external: ExternalState?
    }

    struct ProberState: Encodable {
        var checksRun: Int, late: Int, maxLagSeconds: Double, maxLagLastMinuteSeconds: Double, inFlight: Int
        var regionRttMs: [String: Double], regionRttExcessMs: [String: Double]
    }

    struct PoolState: Encodable {
        var name: String, region: String, up: Bool, reason: String, upFraction: Double
        var configuredWeight: Double, effectiveWeight: Double, slowStart: Double, capacity: Double
        var endpoints: [EndpointState]
    }

    struct NameState: Encodable {
        var name: String, policy: [String], pools: [String], answersByPool: [String: UInt64]
        var failOpen: UInt64, fromZone: UInt64, servfail: UInt64
    }

    struct State: Encodable {
        var generation: Int
        var regions: [String]
        var pools: [PoolState]
        var names: [NameState]
        var overrides: AdminOverrides
        var shareWindowSeconds: Double
        var prober: ProberState
    }

    func state() -> State {
        let snapshot = server.store.current
        let overrides = server.health.overrides
        let ps = server.prober.status()
        let prober = ProberState(checksRun: ps.runs, late: ps.late, maxLagSeconds: ps.maxLag, maxLagLastMinuteSeconds: ps.maxLagRecent,
                                 inFlight: ps.inFlight, regionRttMs: ps.regionRTTMs.mapValues(\.rtt),
                                 regionRttExcessMs: ps.regionRTTMs.mapValues(\.extra))
        guard let rt = snapshot.steering else {
            return State(generation: snapshot.generation, regions: [], pools: [], names: [], overrides: overrides, shareWindowSeconds: 0,
                         prober: prober)
        }
        var checks: [String: [CheckState]] = [:]
        for c in ps.checks {
            checks[c.endpoint, default: []].append(CheckState(
                target: c.target, type: c.kind, up: c.up, reason: c.reason, rttMs: c.rttMs, lastRttMs: c.lastRttMs,
                flapPenalty: c.penalty.rounded(), heldDown: c.suppressed, flaps: c.flaps, runs: c.runs, failures: c.failures,
                certDaysLeft: c.certDaysLeft, secondsSinceLast: c.secondsSinceLast))
        }
        let m = rt.table.model, h = rt.health
        let now = lodestar_monotonic()
        let (recent, window) = shares.recent(rt)
        let total = max(1, recent.reduce(0, +))
        let pools = m.pools.enumerated().map { (p, pool) -> PoolState in
            let pf = h.factor(pool: p, window: pool.slowStart, now: now)
            let eps = pool.endpoints.map { e -> EndpointState in
                let ep = m.endpoints[e]
                let f = h.factor(endpoint: e, window: pool.slowStart, now: now)
                let target: String
                switch ep.target {
                case .address(let b): target = IPAddress.format(b)
                case .cname(let w): target = Name.toText(w)
                }
                return EndpointState(name: ep.name, pool: pool.name, region: m.regions[pool.region].name, target: target,
                                     up: h.endpoints[e].up, reason: h.endpoints[e].reason, configuredWeight: ep.weight,
                                     effectiveWeight: h.endpoints[e].weight * f * pf, slowStart: f,
                                     answers: rt.counters.endpoint(e), share: Double(recent[e]) / Double(total),
                                     checks: checks[ep.name] ?? [],
                                     external: ps.external[ep.name].map { ExternalState(up: $0.up, reason: $0.reason, expiresInSeconds: $0.expiresIn) })
            }
            return PoolState(name: pool.name, region: m.regions[pool.region].name, up: h.pools[p].passing,
                             reason: h.pools[p].reason, upFraction: h.pools[p].upFraction, configuredWeight: pool.weight,
                             effectiveWeight: h.pools[p].weight * pf, slowStart: pf, capacity: pool.capacity, endpoints: eps)
        }
        let names = m.names.enumerated().map { (n, name) -> NameState in
            var byPool: [String: UInt64] = [:]
            for p in name.pools { byPool[m.pools[p].name] = rt.counters.namePool(n, p) }
            return NameState(name: name.name, policy: name.chain.map(\.rawValue), pools: name.pools.map { m.pools[$0].name },
                             answersByPool: byPool, failOpen: rt.counters.fallbacks(n, .failOpen),
                             fromZone: rt.counters.fallbacks(n, .zone), servfail: rt.counters.fallbacks(n, .servfail))
        }
        return State(generation: snapshot.generation, regions: m.regions.map(\.name), pools: pools, names: names,
                     overrides: overrides, shareWindowSeconds: window, prober: prober)
    }

    func metrics() -> String {
        var out = MetricsText(text: QueryMetrics.shared.exposition())
        let snapshot = server.store.current
        let r = server.reloads.withLock { $0 }
        out.family("lodestar_reloads_total", "counter", "Reloads of config and zones, by result.",
                   [("result=\"ok\"", "\(r.ok)"), ("result=\"failed\"", "\(r.failed)")])
        out.single("lodestar_snapshot_generation", "gauge", "Generation of the snapshot being served.", "\(snapshot.generation)")
        if let rt = snapshot.steering { steeringMetrics(rt, into: &out) }
        proberMetrics(server.prober.status(), into: &out)
        if let a = server.anycast { anycastMetrics(a.status(), into: &out) }
        return out.text
    }

    func steeringMetrics(_ rt: SteeringRuntime, into out: inout MetricsText) {
        let m = rt.table.model, h = rt.health
        let now = lodestar_monotonic()
        let esc = MetricsText.esc
        out.family("lodestar_answers_total", "counter", "Load-balanced answers, by name, pool and region.",
                   m.names.enumerated().flatMap { (n, name) in
                       name.pools.map { p in
                           ("name=\"\(esc(name.name))\",pool=\"\(esc(m.pools[p].name))\",region=\"\(esc(m.regions[m.pools[p].region].name))\"",
                            "\(rt.counters.namePool(n, p))")
                       }
                   })
        out.family("lodestar_answers_fallback_total", "counter", "Load-balanced queries not answered by the policy, by reason.",
                   m.names.enumerated().flatMap { (n, name) in
                       AnswerCounters.Fallback.allCases.map { f in
                           ("name=\"\(esc(name.name))\",outcome=\"\(f.label)\"", "\(rt.counters.fallbacks(n, f))")
                       }
                   })
        func endpoint(_ ep: Endpoint) -> String { "endpoint=\"\(esc(ep.name))\",pool=\"\(esc(m.pools[ep.pool].name))\"" }
        out.family("lodestar_endpoint_answers_total", "counter", "Answers naming each endpoint.",
                   m.endpoints.enumerated().map { (e, ep) in (endpoint(ep), "\(rt.counters.endpoint(e))") })
        out.family("lodestar_endpoint_up", "gauge", "Whether the endpoint is up (health and admin).",
                   m.endpoints.enumerated().map { (e, ep) in (endpoint(ep), h.endpoints[e].up ? "1" : "0") })
        out.family("lodestar_endpoint_weight", "gauge", "Configured and effective (health, slow start, overrides) weight.",
                   m.endpoints.enumerated().flatMap { (e, ep) -> [(String, String)] in
                       let pool = m.pools[ep.pool]
                       let f = h.factor(endpoint: e, window: pool.slowStart, now: now) * h.factor(pool: ep.pool, window: pool.slowStart, now: now)
                       return [("endpoint=\"\(esc(ep.name))\",kind=\"configured\"", "\(ep.weight)"),
                               ("endpoint=\"\(esc(ep.name))\",kind=\"effective\"", "\(h.endpoints[e].weight * f)")]
                   })
        out.family("lodestar_pool_up", "gauge", "Whether the pool meets its up threshold (or is forced up).",
                   m.pools.enumerated().map { (p, pool) in
                       ("pool=\"\(esc(pool.name))\",region=\"\(esc(m.regions[pool.region].name))\"", h.pools[p].passing ? "1" : "0")
                   })
    }

    func anycastMetrics(_ s: AnycastStatus, into out: inout MetricsText) {
        out.single("lodestar_anycast_bird_connected", "gauge", "Whether the BIRD control socket is connected.", s.connected ? "1" : "0")
        out.family("lodestar_anycast_commands_total", "counter", "Commands sent to BIRD, and those that failed.",
                   [("result=\"all\"", "\(s.commands)"), ("result=\"error\"", "\(s.commandErrors)")])
        out.single("lodestar_anycast_command_seconds", "gauge", "Round trip of the last BIRD command.", "\(s.lastCommandSeconds ?? 0)")
        out.single("lodestar_anycast_self_check_up", "gauge", "Whether this node's self-check passes (-1: not yet).",
                   s.selfCheckUp.map { $0 ? "1" : "0" } ?? "-1")
        func rows(_ name: String, _ help: String, _ type: String, _ value: (PrefixStatus) -> String?) {
            out.family(name, type, help, s.prefixes.compactMap { p in
                value(p).map { ("prefix=\"\(MetricsText.esc(p.prefix))\",protocol=\"\(MetricsText.esc(p.proto))\"", $0) }
            })
        }
        rows("lodestar_anycast_announced", "Desired state: 1 announce, 0.5 drain, 0 withdraw.", "gauge") {
            $0.desired == "announce" ? "1" : ($0.desired == "drain" ? "0.5" : "0")
        }
        rows("lodestar_anycast_bird_protocol_up", "BIRD's state of the prefix's static protocol.", "gauge") { p in p.birdState.map { $0 == "up" ? "1" : "0" } }
        rows("lodestar_anycast_exported", "Whether BIRD exports the prefix to the export protocol.", "gauge") { p in p.exported.map { $0 ? "1" : "0" } }
        rows("lodestar_anycast_withdrawals_total", "Withdrawals (flaps).", "counter") { "\($0.withdrawals)" }
        rows("lodestar_anycast_alarm", "1 while a withdrawal is held back by min-other-paths.", "gauge") { $0.alarm == nil ? "0" : "1" }
        rows("lodestar_anycast_other_paths", "Paths to the prefix from other POPs, last counted.", "gauge") { p in p.otherPaths.map { "\($0)" } }
        rows("lodestar_anycast_prefix_command_seconds", "Round trip of the last enable/disable for the prefix.", "gauge") { p in
            p.lastCommandSeconds.map { "\($0)" }
        }
    }

    func proberMetrics(_ s: ProberStatus, into out: inout MetricsText) {
        let esc = MetricsText.esc
        func labels(_ c: CheckStatus) -> String { "endpoint=\"\(esc(c.endpoint))\",check=\"\(esc(c.target))\"" }
        out.family("lodestar_check_up", "gauge", "Whether the check passes after rise/fall and damping (-1: not checked yet).",
                   s.checks.map { (labels($0), $0.up.map { $0 ? "1" : "0" } ?? "-1") })
        out.family("lodestar_check_rtt_seconds", "gauge", "Moving average (EWMA, alpha 0.3) of the check's round-trip time.",
                   s.checks.compactMap { c in c.rttMs.map { (labels(c), "\($0 / 1000)") } })
        out.family("lodestar_check_runs_total", "counter", "Checks run.", s.checks.map { (labels($0), "\($0.runs)") })
        out.family("lodestar_check_failures_total", "counter", "Failed checks by reason.",
                   s.checks.flatMap { c in c.failures.sorted { $0.key < $1.key }.map { ("\(labels(c)),reason=\"\($0.key)\"", "\($0.value)") } })
        out.family("lodestar_check_flap_penalty", "gauge", "Flap-damping penalty (held down above 2000 until below 750).",
                   s.checks.map { (labels($0), "\($0.penalty.rounded())") })
        out.family("lodestar_check_flaps_total", "counter", "Up-to-down transitions.", s.checks.map { (labels($0), "\($0.flaps)") })
        out.family("lodestar_tls_certificate_days_left", "gauge", "Days until the origin's certificate expires.",
                   s.checks.compactMap { c in c.certDaysLeft.map { (labels(c), String(format: "%.2f", $0)) } })
        out.family("lodestar_region_rtt_seconds", "gauge", "Mean check RTT to the region's endpoints, and its excess over the recent best.",
                   s.regionRTTMs.sorted { $0.key < $1.key }.flatMap { r in
                       [("region=\"\(esc(r.key))\",kind=\"average\"", "\(r.value.rtt / 1000)"),
                        ("region=\"\(esc(r.key))\",kind=\"excess\"", "\(r.value.extra / 1000)")]
                   })
        out.single("lodestar_prober_checks_total", "counter", "Checks started.", "\(s.runs)")
        out.single("lodestar_prober_late_total", "counter",
                   "Checks started later than scheduled by more than a quarter of their interval.", "\(s.late)")
        out.single("lodestar_prober_lag_seconds", "gauge",
                   "Largest delay between a check's scheduled and actual start, over the last minute.", "\(s.maxLagRecent)")
        out.single("lodestar_prober_in_flight", "gauge", "Checks running now.", "\(s.inFlight)")
    }
}

/// Prometheus text exposition, one metric family at a time.
struct MetricsText {
    var text = ""

    /// HELP and TYPE, then one sample per (labels, value).
    mutating func family(_ name: String, _ type: String, _ help: String, _ rows: [(String, String)]) {
        text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        for (labels, value) in rows { text += "\(name){\(labels)} \(value)\n" }
    }

    /// A family of one unlabelled sample.
    mutating func single(_ name: String, _ type: String, _ help: String, _ value: String) {
        text += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name) \(value)\n"
    }

    /// A label value escaped for the text format.
    static func esc(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
    }
}

/// Samples of the per-endpoint answer counters, for "share of recent answers".
final class ShareWindow: @unchecked Sendable {
    let lock = NSLock()
    var samples: [(time: Double, counts: [UInt64])] = []
    /// The counters sampled (one set per compiled table). Held strongly: a weak reference would give
    /// the object a side table and send every retain and release of it on the query path through the
    /// runtime's slow path (seen in callgrind: ~250 instructions per query on the table).
    var counters: AnswerCounters?

    func sample(_ rt: SteeringRuntime?) {
        guard let rt else { return }
        lock.lock()
        defer { lock.unlock() }
        if counters !== rt.counters { samples.removeAll(); counters = rt.counters }
        samples.append((lodestar_monotonic(), (0..<rt.table.model.endpoints.count).map { rt.counters.endpoint($0) }))
        if samples.count > 13 { samples.removeFirst(samples.count - 13) }
    }

    /// Answers per endpoint since the oldest sample (up to a minute ago), and the window's length.
    func recent(_ rt: SteeringRuntime) -> ([UInt64], Double) {
        lock.lock()
        defer { lock.unlock() }
        let now = (0..<rt.table.model.endpoints.count).map { rt.counters.endpoint($0) }
        guard counters === rt.counters, let first = samples.first, first.counts.count == now.count else { return (now, 0) }
        return (zip(now, first.counts).map { $0 &- $1 }, lodestar_monotonic() - first.time)
    }
}

final class AdminHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let admin: AdminServer
    var head: HTTPRequestHead? = nil
    var body: [UInt8] = []

    init(admin: AdminServer) { self.admin = admin }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            body = []
        case .body(var buf):
            if body.count < 65536 { body += buf.readBytes(length: min(buf.readableBytes, 65536 - body.count)) ?? [] }
        case .end:
            guard let head else { return }
            let r = admin.handle(method: head.method, uri: head.uri, headers: head.headers, body: body)
            var headers = HTTPHeaders()
            headers.add(name: "content-type", value: r.contentType)
            headers.add(name: "content-length", value: "\(r.body.utf8.count)")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: r.status, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: r.body)))), promise: nil)
            let keepAlive = head.isKeepAlive
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
                if !keepAlive { context.close(promise: nil) }
            }
            self.head = nil
        }
    }
}
