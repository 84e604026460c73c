import Anycast
import CLodestarSys
import Cluster
import DNSWire
import Engine
import Foundation
import Health
import Prober
import Steering
import Zones

/// `GET /metrics`: the Prometheus text of every module's counters and gauges.
extension AdminServer {
    func metrics() -> String {
        var out = MetricsText(text: server.store.current.metrics.exposition())
        let snapshot = server.store.current
        let r = server.reloadCounts
        out.family(
            "lodestar_reloads_total", "counter", "Reloads of config and zones, by result.",
            [("result=\"ok\"", "\(r.ok)"), ("result=\"failed\"", "\(r.failed)")])
        out.single(
            "lodestar_snapshot_generation", "gauge", "Generation of the snapshot being served.",
            "\(snapshot.generation)")
        out.single(
            "lodestar_reload_timestamp_seconds", "gauge",
            "When config and zones were last loaded (start or successful reload), as Unix time.",
            "\(server.lastReloadTime)")
        out.single(
            "lodestar_ready", "gauge", "Whether the server takes traffic (/ready answers 200).",
            server.readiness.ready ? "1" : "0")
        let served = Dictionary(
            snapshot.zones.zones.map { ($0.originText, $0.serial) }, uniquingKeysWith: { a, _ in a })
        let lastLoad = server.zoneLoads
        let zoneNames = Set(served.keys).union(lastLoad.keys).sorted()
        out.family(
            "lodestar_zone_loaded", "gauge",
            "Whether the zone's file loaded without errors at the last start or reload.",
            zoneNames.map { ("zone=\"\(MetricsText.esc($0))\"", lastLoad[$0] ?? true ? "1" : "0") })
        out.family(
            "lodestar_zone_serial", "gauge", "SOA serial of the zone being served.",
            zoneNames.compactMap { z in served[z].map { ("zone=\"\(MetricsText.esc(z))\"", "\($0)") } })
        out.family(
            "lodestar_build_info", "gauge",
            "Always 1: the version of lodestar and of the Swift compiler that built it.",
            [("version=\"\(SoftwareVersion.current)\",swift=\"\(Self.swiftVersion)\"", "1")])
        ProcessMetrics.append(to: &out)
        if let rt = snapshot.steering { steeringMetrics(rt, into: &out) }
        proberMetrics(server.prober.status(), into: &out)
        if let a = server.anycast { anycastMetrics(a.status(), into: &out) }
        if let c = server.clusterStatus { clusterMetrics(c, into: &out) }
        return out.text
    }

    /// The compiler's version, for `lodestar_build_info`.
    static var swiftVersion: String {
        #if compiler(>=6.3)
            return "6.3"
        #elseif compiler(>=6.2)
            return "6.2"
        #elseif compiler(>=6.1)
            return "6.1"
        #else
            return "6.0"
        #endif
    }

    func steeringMetrics(_ rt: SteeringRuntime, into out: inout MetricsText) {
        let m = rt.table.model
        let h = rt.health
        let now = lodestar_monotonic()
        let esc = MetricsText.esc
        out.family(
            "lodestar_answers_total", "counter", "Load-balanced answers, by name, pool and region.",
            m.names.enumerated().flatMap { (n, name) in
                name.pools.map { p in
                    (
                        "name=\"\(esc(name.name))\",pool=\"\(esc(m.pools[p].name))\",region=\"\(esc(m.regions[m.pools[p].region].name))\"",
                        "\(rt.counters.namePool(n, p))"
                    )
                }
            })
        out.family(
            "lodestar_answers_fallback_total", "counter",
            "Load-balanced queries not answered by the policy, by reason.",
            m.names.enumerated().flatMap { (n, name) in
                AnswerCounters.Fallback.allCases.map { f in
                    ("name=\"\(esc(name.name))\",outcome=\"\(f.label)\"", "\(rt.counters.fallbacks(n, f))")
                }
            })
        func endpoint(_ ep: Endpoint) -> String {
            "endpoint=\"\(esc(ep.name))\",pool=\"\(esc(m.pools[ep.pool].name))\""
        }
        out.family(
            "lodestar_endpoint_answers_total", "counter", "Answers naming each endpoint.",
            m.endpoints.enumerated().map { (e, ep) in (endpoint(ep), "\(rt.counters.endpoint(e))") })
        out.family(
            "lodestar_endpoint_up", "gauge", "Whether the endpoint is up (health and admin).",
            m.endpoints.enumerated().map { (e, ep) in (endpoint(ep), h.endpoints[e].up ? "1" : "0") })
        out.family(
            "lodestar_endpoint_weight", "gauge", "Weight in the configuration.",
            m.endpoints.enumerated().map { (e, ep) in (endpoint(ep), "\(ep.weight)") })
        out.family(
            "lodestar_endpoint_effective_weight", "gauge",
            "Weight in force: configured, with overrides, health and slow start.",
            m.endpoints.enumerated().map { (e, ep) -> (String, String) in
                let pool = m.pools[ep.pool]
                let f =
                    h.factor(endpoint: e, window: pool.slowStart, now: now)
                    * h.factor(pool: ep.pool, window: pool.slowStart, now: now)
                return (endpoint(ep), "\(h.endpoints[e].weight * f)")
            })
        out.family(
            "lodestar_pool_up", "gauge", "Whether the pool meets its up threshold (or is forced up).",
            m.pools.enumerated().map { (p, pool) in
                (
                    "pool=\"\(esc(pool.name))\",region=\"\(esc(m.regions[pool.region].name))\"",
                    h.pools[p].passing ? "1" : "0"
                )
            })
    }

    func clusterMetrics(_ c: ClusterController.Status, into out: inout MetricsText) {
        let esc = MetricsText.esc
        out.single(
            "lodestar_cluster_connected", "gauge", "Whether etcd answers (the shared view is live).",
            c.connected ? "1" : "0")
        out.family(
            "lodestar_cluster_view_age_seconds", "gauge", "Seconds since the last exchange with etcd.",
            c.viewAgeSeconds.map { [("", String(format: "%.3f", $0))] } ?? [])
        out.single(
            "lodestar_cluster_own_verdicts_only", "gauge",
            "1 while etcd has been away past fallback-after: this POP decides alone.",
            c.ownVerdictsOnly ? "1" : "0")
        out.single(
            "lodestar_cluster_writes_total", "counter",
            "Keys written to etcd (votes, heartbeats, overrides, external input).", "\(c.writes)")
        out.single(
            "lodestar_cluster_write_requests_total", "counter",
            "Requests to etcd that wrote keys (up to 100 votes per transaction).", "\(c.writeRequests)")
        out.single(
            "lodestar_cluster_vote_bytes_total", "counter",
            "Octets of keys and values this POP wrote as votes and heartbeats.", "\(c.writeBytes)")
        out.single(
            "lodestar_cluster_pop_name_conflict", "gauge",
            "1 while another process writes this POP's name (two POPs share cluster.pop).",
            c.popNameConflict == nil ? "0" : "1")
        out.single(
            "lodestar_cluster_compactions_total", "counter",
            "Compactions of etcd's history done by this POP (one POP of all does each).", "\(c.compactions)")
        out.family(
            "lodestar_cluster_vote_up", "gauge",
            "Each POP's vote on each endpoint (1 up, 0 down), as this POP sees them.",
            c.endpoints.flatMap { e in
                e.votes.map { ("endpoint=\"\(esc(e.endpoint))\",pop=\"\(esc($0.pop))\"", $0.up ? "1" : "0") }
            })
        out.family(
            "lodestar_cluster_vote_age_seconds", "gauge", "Age of each POP's vote on each endpoint.",
            c.endpoints.flatMap { e in
                e.votes.map {
                    ("endpoint=\"\(esc(e.endpoint))\",pop=\"\(esc($0.pop))\"", String(format: "%.3f", $0.ageSeconds))
                }
            })
        out.family(
            "lodestar_cluster_endpoint_up", "gauge",
            "The cluster's outcome for each endpoint (the health policy over the votes).",
            c.endpoints.compactMap { e in e.up.map { ("endpoint=\"\(esc(e.endpoint))\"", $0 ? "1" : "0") } })
    }

    func anycastMetrics(_ s: AnycastStatus, into out: inout MetricsText) {
        out.single(
            "lodestar_anycast_bird_connected", "gauge", "Whether the BIRD control socket is connected.",
            s.connected ? "1" : "0")
        out.single("lodestar_anycast_commands_total", "counter", "Commands sent to BIRD.", "\(s.commands)")
        out.single(
            "lodestar_anycast_command_errors_total", "counter", "Commands sent to BIRD that failed.",
            "\(s.commandErrors)")
        out.family(
            "lodestar_anycast_command_seconds", "gauge", "Round trip of the last BIRD command.",
            s.lastCommandSeconds.map { [("", "\($0)")] } ?? [])
        out.family(
            "lodestar_anycast_self_check_up", "gauge",
            "Whether this node's self-check passes (no sample until it has run).",
            s.selfCheckUp.map { [("", $0 ? "1" : "0")] } ?? [])
        func rows(_ name: String, _ help: String, _ type: String, _ value: (PrefixStatus) -> String?) {
            out.family(
                name, type, help,
                s.prefixes.compactMap { p in
                    value(p).map {
                        ("prefix=\"\(MetricsText.esc(p.prefix))\",protocol=\"\(MetricsText.esc(p.proto))\"", $0)
                    }
                })
        }
        rows(
            "lodestar_anycast_announced", "Whether lodestar wants the prefix announced (drained or withdrawn: 0).",
            "gauge"
        ) {
            $0.desired == "announce" ? "1" : "0"
        }
        rows(
            "lodestar_anycast_drained", "Whether the prefix is announced with a drain community (less preferred).",
            "gauge"
        ) {
            $0.desired == "drain" ? "1" : "0"
        }
        rows("lodestar_anycast_bird_protocol_up", "BIRD's state of the prefix's static protocol.", "gauge") { p in
            p.birdState.map { $0 == "up" ? "1" : "0" }
        }
        rows("lodestar_anycast_exported", "Whether BIRD exports the prefix to the export protocol.", "gauge") { p in
            p.exported.map { $0 ? "1" : "0" }
        }
        rows("lodestar_anycast_withdrawals_total", "Withdrawals (flaps).", "counter") { "\($0.withdrawals)" }
        rows("lodestar_anycast_alarm", "1 while a withdrawal is held back by min-other-paths.", "gauge") {
            $0.alarm == nil ? "0" : "1"
        }
        rows("lodestar_anycast_other_paths", "Paths to the prefix from other POPs, last counted.", "gauge") { p in
            p.otherPaths.map { "\($0)" }
        }
        rows(
            "lodestar_anycast_prefix_command_seconds", "Round trip of the last enable/disable for the prefix.", "gauge"
        ) { p in
            p.lastCommandSeconds.map { "\($0)" }
        }
    }

    func proberMetrics(_ s: ProberStatus, into out: inout MetricsText) {
        let esc = MetricsText.esc
        func labels(_ c: CheckStatus) -> String { "endpoint=\"\(esc(c.endpoint))\",check=\"\(esc(c.target))\"" }
        out.family(
            "lodestar_check_up", "gauge",
            "Whether the check passes after rise/fall and damping (no sample until it has run).",
            s.checks.compactMap { c in c.up.map { (labels(c), $0 ? "1" : "0") } })
        out.family(
            "lodestar_check_rtt_seconds", "gauge", "Moving average (EWMA, alpha 0.3) of the check's round-trip time.",
            s.checks.compactMap { c in c.rttMs.map { (labels(c), "\($0 / 1000)") } })
        out.family("lodestar_check_runs_total", "counter", "Checks run.", s.checks.map { (labels($0), "\($0.runs)") })
        out.family(
            "lodestar_check_failures_total", "counter", "Failed checks by reason.",
            s.checks.flatMap { c in
                c.failures.sorted { $0.key < $1.key }.map { ("\(labels(c)),reason=\"\($0.key)\"", "\($0.value)") }
            })
        out.family(
            "lodestar_check_flap_penalty", "gauge", "Flap-damping penalty (held down above 2000 until below 750).",
            s.checks.map { (labels($0), "\($0.penalty.rounded())") })
        out.family(
            "lodestar_check_flaps_total", "counter", "Up-to-down transitions.",
            s.checks.map { (labels($0), "\($0.flaps)") })
        out.family(
            "lodestar_tls_certificate_expiry_timestamp_seconds", "gauge",
            "When the origin's certificate expires, as Unix time.",
            s.checks.compactMap { c in c.certExpiry.map { (labels(c), String(format: "%.0f", $0)) } })
        let regions = s.regionRTTMs.sorted { $0.key < $1.key }
        out.family(
            "lodestar_region_rtt_seconds", "gauge", "Mean check RTT to the region's endpoints.",
            regions.map { ("region=\"\(esc($0.key))\"", "\($0.value.rtt / 1000)") })
        out.family(
            "lodestar_region_rtt_excess_seconds", "gauge", "The region's mean check RTT over the recent best.",
            regions.map { ("region=\"\(esc($0.key))\"", "\($0.value.extra / 1000)") })
        out.single("lodestar_prober_checks_total", "counter", "Checks started.", "\(s.runs)")
        out.single(
            "lodestar_prober_late_total", "counter",
            "Checks started later than scheduled by more than a quarter of their interval.", "\(s.late)")
        out.single(
            "lodestar_prober_lag_seconds", "gauge",
            "Largest delay between a check's scheduled and actual start, over the last minute.", "\(s.maxLagRecent)")
        out.single("lodestar_prober_in_flight", "gauge", "Checks running now.", "\(s.inFlight)")
    }
}
