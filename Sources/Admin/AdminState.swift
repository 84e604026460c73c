import CLodestarSys
import Cluster
import DNSWire
import Engine
import Glibc
import Health
import Prober
import Steering
import Zones

/// `GET /v1/state`: the JSON view of regions, pools, endpoints, names, overrides and the prober.
extension AdminServer {
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
        /// The cluster: etcd, every POP's votes and the outcome, who made each override and when.
        var cluster: ClusterController.Status? = nil
    }

    struct ZoneStatus: Encodable {
        var name: String, serial: UInt32?, records: Int?, loaded: Bool
    }

    /// `GET /v1/status`: what `lodestar ctl status` prints.
    struct Status: Encodable {
        var version: String, pid: Int32, ready: Bool, reason: String
        var generation: Int, zones: [ZoneStatus]
        var reloadsOk: Int, reloadsFailed: Int, lastReloadUnix: Double
        var loadBalancedNames: Int, endpoints: Int, endpointsUp: Int, anycast: Bool
    }

    func status() -> Status {
        let snapshot = server.store.current
        let r = server.readiness
        let counts = server.reloadCounts
        let loads = server.zoneLoads
        var zones = snapshot.zones.zones.map {
            ZoneStatus(
                name: $0.originText, serial: $0.serial, records: $0.recordCount, loaded: loads[$0.originText] ?? true)
        }
        for (name, ok) in loads where !ok && !zones.contains(where: { $0.name == name }) {
            zones.append(ZoneStatus(name: name, serial: nil, records: nil, loaded: false))
        }
        zones.sort { $0.name < $1.name }
        let rt = snapshot.steering
        return Status(
            version: SoftwareVersion.current, pid: getpid(), ready: r.ready, reason: r.reason,
            generation: snapshot.generation, zones: zones, reloadsOk: counts.ok, reloadsFailed: counts.failed,
            lastReloadUnix: server.lastReloadTime, loadBalancedNames: rt?.table.model.names.count ?? 0,
            endpoints: rt?.table.model.endpoints.count ?? 0,
            endpointsUp: rt.map { $0.health.endpoints.filter(\.up).count } ?? 0, anycast: server.anycast != nil)
    }

    func state() -> State {
        let snapshot = server.store.current
        let overrides = server.overrides
        let ps = server.prober.status()
        let prober = ProberState(
            checksRun: ps.runs, late: ps.late, maxLagSeconds: ps.maxLag, maxLagLastMinuteSeconds: ps.maxLagRecent,
            inFlight: ps.inFlight, regionRttMs: ps.regionRTTMs.mapValues(\.rtt),
            regionRttExcessMs: ps.regionRTTMs.mapValues(\.extra))
        guard let rt = snapshot.steering else {
            return State(
                generation: snapshot.generation, regions: [], pools: [], names: [], overrides: overrides,
                shareWindowSeconds: 0,
                prober: prober, cluster: server.clusterStatus)
        }
        var checks: [String: [CheckState]] = [:]
        for c in ps.checks {
            checks[c.endpoint, default: []].append(
                CheckState(
                    target: c.target, type: c.kind, up: c.up, reason: c.reason, rttMs: c.rttMs, lastRttMs: c.lastRttMs,
                    flapPenalty: c.penalty.rounded(), heldDown: c.suppressed, flaps: c.flaps, runs: c.runs,
                    failures: c.failures,
                    certDaysLeft: c.certDaysLeft, secondsSinceLast: c.secondsSinceLast))
        }
        let m = rt.table.model
        let h = rt.health
        let now = lodestar_monotonic()
        let external = server.externalInputs
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
                return EndpointState(
                    name: ep.name, pool: pool.name, region: m.regions[pool.region].name, target: target,
                    up: h.endpoints[e].up, reason: h.endpoints[e].reason, configuredWeight: ep.weight,
                    effectiveWeight: h.endpoints[e].weight * f * pf, slowStart: f,
                    answers: rt.counters.endpoint(e), share: Double(recent[e]) / Double(total),
                    checks: checks[ep.name] ?? [],
                    external: external[ep.name].map {
                        ExternalState(up: $0.up, reason: $0.reason, expiresInSeconds: $0.expires - now)
                    })
            }
            return PoolState(
                name: pool.name, region: m.regions[pool.region].name, up: h.pools[p].passing,
                reason: h.pools[p].reason, upFraction: h.pools[p].upFraction, configuredWeight: pool.weight,
                effectiveWeight: h.pools[p].weight * pf, slowStart: pf, capacity: pool.capacity, endpoints: eps)
        }
        let names = m.names.enumerated().map { (n, name) -> NameState in
            var byPool: [String: UInt64] = [:]
            for p in name.pools { byPool[m.pools[p].name] = rt.counters.namePool(n, p) }
            return NameState(
                name: name.name, policy: name.chain.map(\.rawValue), pools: name.pools.map { m.pools[$0].name },
                answersByPool: byPool, failOpen: rt.counters.fallbacks(n, .failOpen),
                fromZone: rt.counters.fallbacks(n, .zone), servfail: rt.counters.fallbacks(n, .servfail))
        }
        return State(
            generation: snapshot.generation, regions: m.regions.map(\.name), pools: pools, names: names,
            overrides: overrides, shareWindowSeconds: window, prober: prober, cluster: server.clusterStatus)
    }
}
