import Foundation
import OriginSupport
import Synchronization
import Testing

/// Three etcd members and three lodestar POPs on loopback. The POPs probe the same origin from
/// different source addresses (127.0.0.21–23), so the origin can fail for some POPs only.
@Suite(
    "Cluster on etcd", .serialized,
    .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/etcd"), "needs etcd (install-deps --test)"))
struct ClusterTests {
    static let sources = ["127.0.0.21", "127.0.0.22", "127.0.0.23"]

    /// One POP: www.example.com answers na (192.0.2.11) while na-1 is up, else eu (198.51.100.11).
    struct POP {
        let name: String
        let server: LodestarProcess
        let adminPort: Int
        let dir: String

        func answer() -> String {
            (try? server.dig("www.example.com", "A", "+tries=1", "+time=1").addresses.first) ?? "none"
        }

        func state() -> [String: Any] {
            let r = try? Command.run(
                "/usr/bin/curl", ["-s", "--max-time", "3", "http://127.0.0.1:\(adminPort)/v1/state"], timeout: 5)
            return (r.flatMap { try? JSONSerialization.jsonObject(with: Data($0.output.utf8)) } as? [String: Any])
                ?? [:]
        }

        var cluster: [String: Any] { state()["cluster"] as? [String: Any] ?? [:] }

        /// This POP's view of every POP's vote on na-1: POP → up.
        func votes() -> [String: Bool] {
            let eps = cluster["endpoints"] as? [[String: Any]] ?? []
            let na = eps.first { $0["endpoint"] as? String == "na-1" }
            var out: [String: Bool] = [:]
            for v in na?["votes"] as? [[String: Any]] ?? [] { out[v["pop"] as? String ?? ""] = v["up"] as? Bool }
            return out
        }
    }

    static func startPOP(
        _ i: Int, etcd: EtcdCluster, originPort: Int, root: String, extra: String = "",
        health: String = "{ policy: quorum, quorum: 0.5, stale-after: 4, fallback-after: 5 }"
    ) throws -> POP {
        let dir = root + "/pop\(i)"
        try FileManager.default.createDirectory(atPath: dir + "/zones", withIntermediateDirectories: true)
        if !FileManager.default.fileExists(atPath: dir + "/zones/example.com.zone") {
            try FileManager.default.copyItem(
                atPath: Paths.packageRoot + "/zones/example.com.zone", toPath: dir + "/zones/example.com.zone")
        }
        let admin = FreePort.pick()
        try """
        regions:
          us-east: {}
          eu-central: {}
        checks:
          web: { type: http, port: \(originPort), path: /, expect-body: ok, interval: 1, timeout: 0.5, rise: 1, fall: 2, damping: false, jitter: 0, source: \(sources[i]) }
        pools:
          na: { region: us-east, check: web, endpoints: [{ name: na-1, address: 192.0.2.11, probe: 127.0.0.11 }] }
          eu: { region: eu-central, endpoints: [{ name: eu-1, address: 198.51.100.11 }] }
        names:
          www.example.com: { policy: [health, failover], pools: [na, eu], ttl: 10 }
          lat.example.com: { policy: [health, latency, failover], pools: [na, eu], ttl: 10,
                             latency: { default: { us-east: 20, eu-central: 60 }, hysteresis: 10 } }
        admin:
          listen: 127.0.0.1:\(admin)
          socket: ctl.sock
          state-file: state.json
        cluster:
          etcd: [\(etcd.endpoints.map { "\"\($0)\"" }.joined(separator: ", "))]
          prefix: /lodestar/test
          pop: pop\(i)
          lease-ttl: 3
          heartbeat: 1
          timeout: 0.5
          compaction: 2
          health: \(health)
        \(extra)
        """.write(toFile: dir + "/lodestar.yaml", atomically: true, encoding: .utf8)
        let server = try LodestarProcess(zones: dir + "/zones", config: dir + "/lodestar.yaml")
        return POP(name: "pop\(i)", server: server, adminPort: admin, dir: dir)
    }

    static let na = "192.0.2.11", eu = "198.51.100.11"

    /// What every test here starts with: etcd, a folder for the POPs, an origin on 127.0.0.11.
    final class Fixture {
        let etcd: EtcdCluster
        let root: String
        let originPort = FreePort.pick()
        let origins: Origins

        init(etcd size: Int, certs: String? = nil) throws {
            etcd = try EtcdCluster(size: size, certs: certs)
            root = try Paths.temporaryDirectory()
            do {
                origins = try Origins(["127.0.0.11:\(originPort)"])
            } catch {
                etcd.stop()
                throw error
            }
        }

        func stop() {
            origins.stop()
            etcd.stop()
            try? FileManager.default.removeItem(atPath: root)
        }
    }

    @Test(
        "votes: one POP of three failing keeps the origin up everywhere, two take it down everywhere; a drain on one POP moves the others within 1 s; a POP killed loses its votes",
        .timeLimit(.minutes(3)))
    func votesAndOverrides() throws {
        let f = try Fixture(etcd: 3)
        defer { f.stop() }
        let (etcd, root, originPort, origins) = (f.etcd, f.root, f.originPort, f.origins)
        let origin = "127.0.0.11:\(originPort)"
        // Anycast configured (no BIRD: the decision and its maintenance override still show).
        var pops = try (0..<3).map {
            try Self.startPOP(
                $0, etcd: etcd, originPort: originPort, root: root,
                extra: """
                    anycast:
                      socket: \(root)/no-bird-\($0).ctl
                      include-file: \(root)/pop\($0)/anycast.conf
                      shutdown-delay: 0
                      prefixes:
                        - { prefix: 198.51.100.53/32, protocol: svc_dns4 }
                    """)
        }
        defer { for p in pops { p.server.stop() } }
        let started = Date()
        let allVoted = Poll.seconds(limit: 10, every: 0.1) { pops.allSatisfy { $0.votes().count == 3 } }
        #expect(allVoted != nil, "every POP sees three votes: \(pops.map { $0.votes() })")
        #expect(pops.allSatisfy { $0.answer() == Self.na })
        // Fails for POP 0 only: its vote goes down, the quorum keeps the origin up everywhere.
        try origins.mode(origin, "fail-from:\(Self.sources[0])")
        let voted = Poll.seconds(limit: 6, every: 0.1) { pops[1].votes()["pop0"] == false }
        #expect(voted != nil, "POP 0's down vote reaches POP 1: \(pops[1].votes())")
        usleep(1_000_000)
        #expect(
            pops.map { $0.answer() } == [Self.na, Self.na, Self.na], "one POP of three does not take the origin down")
        let reason = (pops[0].cluster["endpoints"] as? [[String: Any]])?.first?["reason"] as? String ?? ""
        #expect(reason.contains("2 of 3 POPs say up"), "\(reason)")
        let explain = try Command.run(
            Paths.binary,
            ["ctl", "explain", "www.example.com", "--client", "192.0.2.1", "--socket", pops[1].dir + "/ctl.sock"])
        #expect(
            explain.output.contains("na-1 (pool na): up — up by quorum: 2 of 3 POPs say up (pop0 down: "),
            "\(explain.output)")
        // Fails for POPs 0 and 1: down everywhere within interval × fall + 1 s (3 s).
        try origins.mode(origin, "fail-from:\(Self.sources[0]),\(Self.sources[1])")
        let t0 = Date()
        let down = Poll.seconds(limit: 10, every: 0.05) { pops.allSatisfy { $0.answer() == Self.eu } }
        #expect(
            down != nil && Date().timeIntervalSince(t0) <= 3.5, "down everywhere in \(Date().timeIntervalSince(t0)) s")
        try origins.mode(origin, "ok")
        #expect(
            Poll.seconds(limit: 6, every: 0.05) { pops.allSatisfy { $0.answer() == Self.na } } != nil,
            "back up everywhere")
        // A drain on POP 0 moves POPs 1 and 2 within 1 s; /v1/state says who made it.
        let drain = try Command.run(Paths.binary, ["ctl", "drain", "na", "--socket", pops[0].dir + "/ctl.sock"])
        #expect(drain.status == 0, "\(drain)")
        let moved = Poll.seconds(limit: 3, every: 0.02) { pops[1].answer() == Self.eu && pops[2].answer() == Self.eu }
        #expect(moved.map { $0 <= 1 } == true, "drain reached the other POPs in \(moved.map { "\($0)" } ?? "never") s")
        let provenance = pops[2].cluster["overrides"] as? [[String: Any]] ?? []
        #expect(provenance.contains { $0["name"] as? String == "na" && $0["by"] as? String == "pop0" }, "\(provenance)")
        let saved = (try? String(contentsOfFile: pops[2].dir + "/state.json", encoding: .utf8)) ?? ""
        #expect(saved.contains("drain"), "the shared override is in POP 2's state file too")
        #expect(
            try Command.run(Paths.binary, ["ctl", "undrain", "na", "--socket", pops[1].dir + "/ctl.sock"]).status == 0)
        #expect(Poll.seconds(limit: 3, every: 0.02) { pops.allSatisfy { $0.answer() == Self.na } } != nil)
        // Anycast maintenance of POP 0, asked on POP 1.
        let withdraw = try Command.run(
            Paths.binary,
            ["ctl", "anycast", "withdraw", "svc_dns4", "--pop", "pop0", "--socket", pops[1].dir + "/ctl.sock"])
        #expect(withdraw.status == 0, "\(withdraw)")
        func desired(_ p: POP) -> String {
            let r = try? Command.run("/usr/bin/curl", ["-s", "http://127.0.0.1:\(p.adminPort)/v1/anycast"])
            let o =
                (r.flatMap { try? JSONSerialization.jsonObject(with: Data($0.output.utf8)) } as? [String: Any]) ?? [:]
            return ((o["prefixes"] as? [[String: Any]])?.first?["desired"] as? String) ?? "?"
        }
        #expect(
            Poll.seconds(limit: 3, every: 0.05) { desired(pops[0]) == "withdraw" } != nil,
            "POP 0 withdraws: \(desired(pops[0]))")
        #expect(desired(pops[1]) != "withdraw" && desired(pops[2]) != "withdraw", "only POP 0")
        #expect(
            try Command.run(
                Paths.binary,
                ["ctl", "anycast", "auto", "svc_dns4", "--pop", "pop0", "--socket", pops[2].dir + "/ctl.sock"]
            ).status == 0)
        #expect(Poll.seconds(limit: 3, every: 0.05) { desired(pops[0]) != "withdraw" } != nil)
        // etcd's history is compacted every 2 s by one POP of the three, not by each.
        #expect(
            Poll.seconds(limit: 10, every: 0.2) { Self.compactedBefore(etcd, revision: 2) } != nil, "history compacted")
        let compactions = pops.map { ($0.cluster["compactions"] as? Int) ?? 0 }
        let elapsed = Date().timeIntervalSince(started)
        #expect(
            compactions.reduce(0, +) >= 1 && Double(compactions.reduce(0, +)) <= elapsed / 2 + 2,
            "\(compactions) compactions in \(Int(elapsed)) s")
        // A POP killed with SIGKILL: its votes vanish when its lease (3 s) expires.
        kill(pops[2].server.pid, SIGKILL)
        pops[2].server.process.waitUntilExit()
        let gone = Poll.seconds(limit: 8, every: 0.1) { pops[0].votes()["pop2"] == nil }
        #expect(
            gone != nil && gone! <= 5,
            "pop2's vote gone after its lease: \(pops[0].votes()), \(gone.map { "\($0)" } ?? "never") s")
        _ = pops.removeLast()
    }

    @Test(
        "quorum lost and regained 20 times, longer than stale-after each time, with the origin down for one POP of three: no answer changes anywhere, no clock warning",
        .timeLimit(.minutes(5)))
    func quorumFlaps() throws {
        let f = try Fixture(etcd: 3)
        defer { f.stop() }
        let (etcd, root, originPort, origins) = (f.etcd, f.root, f.originPort, f.origins)
        let origin = "127.0.0.11:\(originPort)"
        // Outages of 3 s: past stale-after (2 s), short of fallback-after (30 s).
        let pops = try (0..<3).map {
            try Self.startPOP(
                $0, etcd: etcd, originPort: originPort, root: root,
                health: "{ policy: quorum, quorum: 0.5, stale-after: 2, fallback-after: 30 }")
        }
        defer { for p in pops { p.server.stop() } }
        #expect(Poll.seconds(limit: 10, every: 0.1) { pops.allSatisfy { $0.votes().count == 3 } } != nil)
        try origins.mode(origin, "fail-from:\(Self.sources[0])")
        #expect(Poll.seconds(limit: 6, every: 0.1) { pops.allSatisfy { $0.votes()["pop0"] == false } } != nil)
        usleep(1_000_000)
        #expect(pops.map { $0.answer() } == [Self.na, Self.na, Self.na])
        // Every POP's answer sampled all along, on a thread of its own.
        let changed = Mutex<[String]>([])
        let stop = Mutex(false)
        let sampler = Thread {
            while !stop.withLock({ $0 }) {
                for p in pops {
                    let a = p.answer()
                    if a != Self.na { changed.withLock { $0.append("\(p.name): \(a) at \(Date())") } }
                }
                usleep(100_000)
            }
        }
        sampler.start()
        var cycles = 0
        for _ in 0..<20 {
            etcd.kill(1)
            etcd.kill(2)
            usleep(3_000_000)
            try etcd.start(1)
            try etcd.start(2)
            guard
                Poll.seconds(limit: 20, every: 0.1, { pops.allSatisfy { $0.cluster["connected"] as? Bool == true } })
                    != nil
            else { break }
            usleep(1_500_000)
            cycles += 1
        }
        stop.withLock { $0 = true }
        while !sampler.isFinished { usleep(50_000) }
        #expect(cycles == 20, "etcd came back each time")
        #expect(changed.withLock { $0 }.isEmpty, "no answer changed: \(changed.withLock { $0 }.prefix(10))")
        for p in pops {
            #expect(
                !p.server.log().contains("s off this one's"),
                "\(p.name): \(p.server.log().components(separatedBy: "\n").filter { $0.contains("clock") }.prefix(3))")
        }
    }

    @Test(
        "etcd trouble: one member killed changes nothing; two killed: the last view, then own verdicts after the bound; restarted: converges",
        .timeLimit(.minutes(3)))
    func etcdTrouble() throws {
        let f = try Fixture(etcd: 3)
        defer { f.stop() }
        let (etcd, root, originPort, origins) = (f.etcd, f.root, f.originPort, f.origins)
        let origin = "127.0.0.11:\(originPort)"
        var pops = try (0..<3).map { try Self.startPOP($0, etcd: etcd, originPort: originPort, root: root) }
        defer { for p in pops { p.server.stop() } }
        #expect(Poll.seconds(limit: 10, every: 0.1) { pops.allSatisfy { $0.votes().count == 3 } } != nil)
        // The origin fails for POP 0 only: up everywhere by quorum.
        try origins.mode(origin, "fail-from:\(Self.sources[0])")
        #expect(
            Poll.seconds(limit: 6, every: 0.1) { pops[0].votes()["pop0"] == false && pops[2].votes()["pop0"] == false }
                != nil)
        #expect(pops.map { $0.answer() } == [Self.na, Self.na, Self.na])
        // One member down: nothing changes, and overrides still go through.
        etcd.kill(0)
        usleep(2_000_000)
        #expect(pops.map { $0.answer() } == [Self.na, Self.na, Self.na])
        #expect(
            Poll.seconds(limit: 5, every: 0.1) { pops.allSatisfy { $0.cluster["connected"] as? Bool == true } } != nil,
            "connected through the other members: \(pops.map { $0.cluster["lastError"] ?? "" })")
        #expect(
            try Command.run(Paths.binary, ["ctl", "weight", "eu-1", "3", "--socket", pops[1].dir + "/ctl.sock"]).status
                == 0)
        #expect(
            Poll.seconds(limit: 3, every: 0.05) {
                ((pops[2].state()["overrides"] as? [String: Any])?["endpoints"] as? [String: Any])?["eu-1"] != nil
            } != nil)
        // Two down: no quorum. Every POP keeps its last view (POP 0 too, though its own verdict is down)…
        etcd.kill(1)
        let away = Poll.seconds(limit: 6, every: 0.1) { pops.allSatisfy { $0.cluster["connected"] as? Bool == false } }
        #expect(away != nil, "etcd seen as away: \(pops.map { $0.cluster["lastError"] ?? "" })")
        #expect(pops.map { $0.answer() } == [Self.na, Self.na, Self.na], "the last shared view is kept")
        let refused = try Command.run(Paths.binary, ["ctl", "drain", "na", "--socket", pops[1].dir + "/ctl.sock"])
        #expect(
            refused.status == 1 && refused.error.contains("unreachable"),
            "an override without etcd is refused: \(refused)")
        // …until fallback-after (5 s): then POP 0 decides alone (down), the others alone (up).
        let fell = Poll.seconds(limit: 10, every: 0.1) { pops[0].answer() == Self.eu }
        #expect(fell != nil, "POP 0 falls back to its own verdict")
        #expect(pops[0].cluster["ownVerdictsOnly"] as? Bool == true)
        #expect(pops[1].answer() == Self.na && pops[2].answer() == Self.na)
        let metrics = try Command.run("/usr/bin/curl", ["-s", "http://127.0.0.1:\(pops[0].adminPort)/metrics"]).output
        #expect(
            metrics.contains("\nlodestar_cluster_connected 0")
                && metrics.contains("\nlodestar_cluster_own_verdicts_only 1"))
        // A POP restarted while etcd is away starts from the shared overrides in its state file.
        pops[2].server.stop()
        let restarted = try LodestarProcess(zones: pops[2].dir + "/zones", config: pops[2].dir + "/lodestar.yaml")
        pops[2] = POP(name: "pop2", server: restarted, adminPort: pops[2].adminPort, dir: pops[2].dir)
        let weight =
            ((pops[2].state()["overrides"] as? [String: Any])?["endpoints"] as? [String: Any])?["eu-1"]
            as? [String: Any]
        #expect(
            (weight?["weight"] as? NSNumber)?.doubleValue == 3,
            "restarted without etcd, with the shared overrides: \(String(describing: weight))")
        // etcd back: the POPs reconnect, re-publish and converge (up everywhere by quorum again).
        try etcd.start(0)
        try etcd.start(1)
        let back = Poll.seconds(limit: 20, every: 0.2) {
            pops.allSatisfy { $0.cluster["connected"] as? Bool == true } && pops.allSatisfy { $0.answer() == Self.na }
        }
        #expect(
            back != nil,
            "converged after etcd came back: \(pops.map { $0.answer() }) \(pops.map { $0.cluster["lastError"] ?? "" })")
        #expect(Poll.seconds(limit: 5, every: 0.1) { pops[1].votes().count == 3 } != nil, "every vote published again")
    }

    static func b64(_ s: String) -> String { Data(s.utf8).base64EncodedString() }

    /// POSTs `body` to etcd's JSON gateway on the first member (as another POP or an operator
    /// would); the reply's text.
    static func gateway(_ etcd: EtcdCluster, _ path: String, _ body: String) throws -> String {
        try Command.run("/usr/bin/curl", ["-s", "--max-time", "3", "-X", "POST", etcd.endpoints[0] + path, "-d", body])
            .output
    }

    /// A key written straight to etcd.
    static func put(_ etcd: EtcdCluster, _ key: String, _ value: String) throws {
        let out = try gateway(etcd, "/v3/kv/put", "{\"key\":\"\(b64(key))\",\"value\":\"\(b64(value))\"}")
        guard out.contains("revision") else { throw TestFailure("put \(key): \(out)") }
    }

    /// Whether etcd's history before `revision` is gone (a read at it is refused as compacted).
    static func compactedBefore(_ etcd: EtcdCluster, revision: Int) -> Bool {
        let out = try? gateway(etcd, "/v3/kv/range", "{\"key\":\"\(b64("/"))\",\"revision\":\"\(revision)\"}")
        return out?.contains("compacted") == true
    }

    @Test(
        "measured: from a vote written to etcd to every POP's answer changing, median and p99 over 50 changes",
        .timeLimit(.minutes(3)))
    func voteToAnswerLatency() throws {
        let f = try Fixture(etcd: 3)
        defer { f.stop() }
        let (etcd, root, originPort) = (f.etcd, f.root, f.originPort)
        // quorum 0: one down vote takes the endpoint down; the votes come from a fourth "POP", this test.
        let pops = try (0..<3).map {
            try Self.startPOP(
                $0, etcd: etcd, originPort: originPort, root: root,
                health: "{ policy: quorum, quorum: 0, stale-after: 4, fallback-after: 30 }")
        }
        defer { for p in pops { p.server.stop() } }
        #expect(Poll.seconds(limit: 10, every: 0.1) { pops.allSatisfy { $0.votes().count == 3 } } != nil)
        let future = Date().timeIntervalSince1970 + 3600
        try Self.put(etcd, "/lodestar/test/pops/bench", "{\"at\":\(future)}")
        let query = RawDNS.query(id: 7, name: "www.example.com", type: 1)
        func answers() -> [String?] {
            pops.map { ProxyProtocolTests.address(RawDNS.udp(query, port: $0.server.port, timeout: 0.5)) }
        }
        var times: [Double] = []
        for i in 0..<50 {
            let down = i % 2 == 0
            try Self.put(
                etcd, "/lodestar/test/votes/na-1/bench", "{\"up\":\(!down),\"reason\":\"bench\",\"at\":\(future)}")
            let want = down ? Self.eu : Self.na
            let t0 = Date()
            var seen = false
            while Date().timeIntervalSince(t0) < 5 {
                if answers().allSatisfy({ $0 == want }) {
                    seen = true
                    break
                }
                usleep(1000)
            }
            #expect(seen, "change \(i) reached every POP")
            times.append(Date().timeIntervalSince(t0))
        }
        times.sort()
        let median = times[times.count / 2]
        let p99 = times[min(times.count - 1, Int(Double(times.count) * 0.99))]
        print(
            "cluster: vote to every POP's answer: median \(String(format: "%.1f", median * 1000)) ms, p99 \(String(format: "%.1f", p99 * 1000)) ms over \(times.count) changes"
        )
        #expect(p99 < 1, "p99 \(p99) s")
    }

    @Test(
        "measured: writes and octets into etcd per POP at 1,000 endpoints checked every 10 s", .timeLimit(.minutes(3)))
    func writeLoad() throws {
        let f = try Fixture(etcd: 3)
        defer { f.stop() }
        let (etcd, dir, originPort, origins) = (f.etcd, f.root, f.originPort, f.origins)
        try FileManager.default.createDirectory(atPath: dir + "/zones", withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            atPath: Paths.packageRoot + "/zones/example.com.zone", toPath: dir + "/zones/example.com.zone")
        let admin = FreePort.pick()
        var pools = ""
        for p in 0..<10 {
            pools += "  p\(p):\n    region: r\n    check: web\n    endpoints:\n"
            for e in 0..<100 {
                pools += "      - { name: e\(p)-\(e), address: 10.0.\(p).\(e + 1), probe: 127.0.0.11 }\n"
            }
        }
        try """
        regions:
          r: {}
        checks:
          web: { type: tcp, port: \(originPort), interval: 10, timeout: 1, rise: 1, fall: 1, damping: false }
        prober:
          cold-start-timeout: 15
        pools:
        \(pools)
        names:
          www.example.com: { policy: [health, weighted], pools: [\((0..<10).map { "p\($0)" }.joined(separator: ", "))], ttl: 10 }
        admin:
          listen: 127.0.0.1:\(admin)
        cluster:
          etcd: [\(etcd.endpoints.map { "\"\($0)\"" }.joined(separator: ", "))]
          prefix: /lodestar/load
          pop: pop0
          heartbeat: 5
          lease-ttl: 10
        """.write(toFile: dir + "/lodestar.yaml", atomically: true, encoding: .utf8)
        let server = try LodestarProcess(zones: dir + "/zones", config: dir + "/lodestar.yaml", startupTimeout: 30)
        defer { server.stop() }
        func counters() -> (writes: Double, bytes: Double, requests: Double) {
            let m = (try? Command.run("/usr/bin/curl", ["-s", "http://127.0.0.1:\(admin)/metrics"]).output) ?? ""
            func value(_ name: String) -> Double {
                m.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap {
                    Double($0.split(separator: " ")[1])
                } ?? -1
            }
            return (
                value("lodestar_cluster_writes_total"), value("lodestar_cluster_vote_bytes_total"),
                value("lodestar_cluster_write_requests_total")
            )
        }
        // The first publication: every endpoint's vote, one request (and connection) each.
        _ = Poll.seconds(limit: 20, every: 0.02) { counters().writes >= 1 }
        let publishing = Date()
        #expect(Poll.seconds(limit: 20, every: 0.02) { counters().writes >= 1000 } != nil, "\(counters())")
        let publishSeconds = Date().timeIntervalSince(publishing)
        usleep(2_000_000)
        let start = counters()
        let t0 = Date()
        usleep(30_000_000)
        let steady = counters()
        let seconds = Date().timeIntervalSince(t0)
        // Every endpoint goes down at once (the origin stops): one write per endpoint.
        try origins.mode("127.0.0.11:\(originPort)", "down")
        _ = Poll.seconds(limit: 20, every: 0.2) { counters().writes - steady.writes >= 1000 }
        let flip = counters()
        let steadyWrites = (steady.writes - start.writes) / seconds
        let steadyBytes = (steady.bytes - start.bytes) / seconds
        print(
            "cluster: 1,000 endpoints every 10 s: first publication \(Int(start.writes)) writes, \(Int(start.bytes)) octets in \(Int(start.requests)) requests, \(String(format: "%.2f", publishSeconds)) s; steady \(String(format: "%.2f", steadyWrites)) writes/s, \(String(format: "%.0f", steadyBytes)) octets/s; all 1,000 changing: \(Int(flip.writes - steady.writes)) writes in \(Int(flip.requests - steady.requests)) requests, \(Int(flip.bytes - steady.bytes)) octets"
        )
        #expect(steadyWrites < 1, "steady state: heartbeats only, not a write per probe: \(steadyWrites)/s")
        #expect(flip.writes - steady.writes >= 1000 && flip.writes - steady.writes < 1100)
        #expect(
            start.requests < 100 && flip.requests - steady.requests < 100,
            "votes batched: \(start.requests), \(flip.requests - steady.requests) requests")
        // A second POP joining reads over 2,000 keys, 1,000 per request, at one revision: it sees
        // every vote of the first.
        let admin2 = FreePort.pick()
        let config2 = try String(contentsOfFile: dir + "/lodestar.yaml", encoding: .utf8)
            .replacingOccurrences(of: "pop: pop0", with: "pop: pop1").replacingOccurrences(
                of: ":\(admin)\n", with: ":\(admin2)\n")
        try config2.write(toFile: dir + "/lodestar2.yaml", atomically: true, encoding: .utf8)
        let second = try LodestarProcess(zones: dir + "/zones", config: dir + "/lodestar2.yaml", startupTimeout: 30)
        defer { second.stop() }
        let secondPOP = POP(name: "pop1", server: second, adminPort: admin2, dir: dir)
        func pop0Down() -> Int {
            let eps = secondPOP.cluster["endpoints"] as? [[String: Any]] ?? []
            return eps.filter { e in
                ((e["votes"] as? [[String: Any]]) ?? []).contains {
                    $0["pop"] as? String == "pop0" && $0["up"] as? Bool == false
                }
            }.count
        }
        #expect(
            Poll.seconds(limit: 10, every: 0.5) { pop0Down() == 1000 } != nil,
            "the second POP sees pop0's 1,000 votes: \(pop0Down())")
    }

    @Test(
        "rtt: mean: the latency step uses each region's RTT excess averaged over the POPs; rtt: local, this POP's own",
        .timeLimit(.minutes(2)))
    func meanRTT() throws {
        let f = try Fixture(etcd: 1)
        defer { f.stop() }
        let (etcd, root, originPort) = (f.etcd, f.root, f.originPort)
        let mean = try Self.startPOP(
            0, etcd: etcd, originPort: originPort, root: root,
            health: "{ policy: quorum, stale-after: 4, fallback-after: 30, rtt: mean }")
        defer { mean.server.stop() }
        let local = try Self.startPOP(
            1, etcd: etcd, originPort: originPort, root: root,
            health: "{ policy: quorum, stale-after: 4, fallback-after: 30, rtt: local }")
        defer { local.server.stop() }
        func lat(_ p: POP) -> String {
            (try? p.server.dig("lat.example.com", "A", "+tries=1", "+time=1").addresses.first) ?? "none"
        }
        #expect(Poll.seconds(limit: 10, every: 0.1) { mean.votes().count == 2 } != nil)
        #expect(lat(mean) == Self.na && lat(local) == Self.na, "us-east 20 ms against eu-central 60 ms")
        // A third POP (this test) whose origins in us-east are 200 ms over their best: the mean
        // over the POPs that have us-east (pop0, pop1 at about 0, and it) is about 67 ms: eu-central
        // (60 ms) wins on the POP that uses the mean, not on the one that uses its own.
        let future = Date().timeIntervalSince1970 + 3600
        try Self.put(etcd, "/lodestar/test/pops/far", "{\"at\":\(future),\"rtt\":{\"us-east\":200}}")
        #expect(Poll.seconds(limit: 5, every: 0.1) { lat(mean) == Self.eu } != nil, "the mean moved lat to eu-central")
        #expect(lat(local) == Self.na, "rtt: local keeps its own RTTs")
        #expect(mean.answer() == Self.na, "a name without a latency step does not move")
        // That POP gone: its heartbeat no longer counts, back to us-east.
        _ = try Self.gateway(etcd, "/v3/kv/deleterange", "{\"key\":\"\(Self.b64("/lodestar/test/pops/far"))\"}")
        #expect(Poll.seconds(limit: 5, every: 0.1) { lat(mean) == Self.na } != nil, "back to us-east")
    }

    @Test(
        "etcd with authentication: a POP with its user reads, writes and compacts; a wrong password is refused and said so",
        .timeLimit(.minutes(2)))
    func authentication() throws {
        let f = try Fixture(etcd: 1)
        defer { f.stop() }
        let (etcd, root, originPort) = (f.etcd, f.root, f.originPort)
        func gateway(_ path: String, _ body: String) throws {
            let out = try Self.gateway(etcd, path, body)
            guard out.contains("header"), !out.contains("\"error\"") else { throw TestFailure("\(path): \(out)") }
        }
        // A root user, and a user "pop" that may read and write /lodestar/test/ only.
        try gateway("/v3/auth/role/add", "{\"name\":\"root\"}")
        try gateway("/v3/auth/user/add", "{\"name\":\"root\",\"password\":\"root-secret\"}")
        try gateway("/v3/auth/user/grant", "{\"user\":\"root\",\"role\":\"root\"}")
        try gateway("/v3/auth/role/add", "{\"name\":\"lodestar\"}")
        try gateway(
            "/v3/auth/role/grant",
            "{\"name\":\"lodestar\",\"perm\":{\"permType\":\"READWRITE\",\"key\":\"\(Self.b64("/lodestar/test/"))\",\"range_end\":\"\(Self.b64("/lodestar/test0"))\"}}"
        )
        try gateway("/v3/auth/user/add", "{\"name\":\"pop\",\"password\":\"pop-secret\"}")
        try gateway("/v3/auth/user/grant", "{\"user\":\"pop\",\"role\":\"lodestar\"}")
        try gateway("/v3/auth/enable", "{}")
        try "pop-secret\n".write(toFile: root + "/good.password", atomically: true, encoding: .utf8)
        try "guess\n".write(toFile: root + "/bad.password", atomically: true, encoding: .utf8)
        let good = try Self.startPOP(
            0, etcd: etcd, originPort: originPort, root: root,
            extra: "  user: pop\n  password-file: \(root)/good.password")
        defer { good.server.stop() }
        let bad = try Self.startPOP(
            1, etcd: etcd, originPort: originPort, root: root,
            extra: "  user: pop\n  password-file: \(root)/bad.password")
        defer { bad.server.stop() }
        #expect(
            Poll.seconds(limit: 10, every: 0.1) { good.votes()["pop0"] == true } != nil,
            "votes with a user: \(good.cluster)")
        #expect(bad.cluster["connected"] as? Bool == false)
        #expect((bad.cluster["lastError"] as? String ?? "").contains("authentication as pop failed"), "\(bad.cluster)")
        #expect(
            good.votes()["pop1"] == nil && bad.answer() == Self.na,
            "the refused POP wrote nothing and serves on its own")
        // compaction: 2, done by this user too (etcd 3.4 lets a user compact; the POP stays connected).
        #expect(
            Poll.seconds(limit: 10, every: 0.2) { (good.cluster["compactions"] as? Int ?? 0) >= 1 } != nil,
            "\(good.cluster)")
        #expect(good.cluster["connected"] as? Bool == true)
        #expect(!good.server.log().contains("compacting etcd's history failed"), "\(good.server.log().suffix(800))")
        // etcd restarted: its tokens are gone; the POP authenticates again and carries on.
        etcd.kill(0)
        #expect(Poll.seconds(limit: 6, every: 0.1) { good.cluster["connected"] as? Bool == false } != nil)
        try etcd.start(0)
        #expect(
            Poll.seconds(limit: 15, every: 0.2) {
                good.cluster["connected"] as? Bool == true && good.votes()["pop0"] == true
            } != nil,
            "back after etcd's restart: \(good.cluster["lastError"] ?? "")")
    }

    @Test(
        "careless operators: two lodestars given one POP name both say so; a POP whose clock is a minute behind still counts, and its offset shows",
        .timeLimit(.minutes(2)))
    func sharedNameAndSkewedClock() throws {
        let f = try Fixture(etcd: 1)
        defer { f.stop() }
        let (etcd, root, originPort) = (f.etcd, f.root, f.originPort)
        let first = try Self.startPOP(0, etcd: etcd, originPort: originPort, root: root)
        defer { first.server.stop() }
        #expect(Poll.seconds(limit: 10, every: 0.1) { first.votes()["pop0"] == true } != nil)
        // A POP whose clock is 60 s behind: its heartbeat and a down vote (stale-after is 4 s).
        let behind = Date().timeIntervalSince1970 - 60
        try Self.put(
            etcd, "/lodestar/test/votes/na-1/slow", "{\"up\":false,\"reason\":\"slow clock\",\"at\":\(behind)}")
        // Heartbeats as a POP writes them, one a second: offsets are judged only once this POP's
        // own heartbeats come back promptly (not from the first ones after start).
        for i in 0..<3 {
            try Self.put(etcd, "/lodestar/test/pops/slow", "{\"at\":\(behind + Double(i)),\"host\":\"slowhost\"}")
            usleep(1_000_000)
        }
        let counted = Poll.seconds(limit: 5, every: 0.1) {
            let eps = first.cluster["endpoints"] as? [[String: Any]] ?? []
            let votes = eps.first { $0["endpoint"] as? String == "na-1" }?["votes"] as? [[String: Any]] ?? []
            return votes.contains { $0["pop"] as? String == "slow" && $0["counted"] as? Bool == true }
        }
        #expect(counted != nil, "the slow clock's vote counts: \(first.cluster["endpoints"] ?? "")")
        let slow = (first.cluster["pops"] as? [[String: Any]] ?? []).first { $0["pop"] as? String == "slow" }
        let offset = (slow?["clockOffsetSeconds"] as? NSNumber)?.doubleValue ?? 0
        #expect(offset < -55 && offset > -65 && slow?["host"] as? String == "slowhost", "\(String(describing: slow))")
        #expect(first.server.log().contains("pop slow's clock is -60."), "\(first.server.log().suffix(600))")
        // A copy of the same config on another admin port: the same POP name, twice.
        let admin2 = FreePort.pick()
        let copy = try String(contentsOfFile: first.dir + "/lodestar.yaml", encoding: .utf8)
            .replacingOccurrences(of: ":\(first.adminPort)\n", with: ":\(admin2)\n")
            .replacingOccurrences(of: "socket: ctl.sock", with: "socket: ctl2.sock")
        try copy.write(toFile: first.dir + "/copy.yaml", atomically: true, encoding: .utf8)
        let twin = try LodestarProcess(zones: first.dir + "/zones", config: first.dir + "/copy.yaml")
        defer { twin.stop() }
        let twinPOP = POP(name: "pop0", server: twin, adminPort: admin2, dir: first.dir)
        let both = Poll.seconds(limit: 6, every: 0.2) {
            first.cluster["popNameConflict"] as? String != nil && twinPOP.cluster["popNameConflict"] as? String != nil
        }
        #expect(
            both != nil,
            "both see the other: \(first.cluster["popNameConflict"] ?? "-") / \(twinPOP.cluster["popNameConflict"] ?? "-")"
        )
        #expect(first.server.log().contains("writes as pop pop0 too"))
        let metrics = try Command.run("/usr/bin/curl", ["-s", "http://127.0.0.1:\(admin2)/metrics"]).output
        #expect(metrics.contains("\nlodestar_cluster_pop_name_conflict 1"))
    }

    @Test(
        "TLS to etcd with a client certificate: connected with it; without it, refused and said so",
        .timeLimit(.minutes(2)))
    func tlsToEtcd() throws {
        let certs = NSTemporaryDirectory() + "lodestar-etcd-certs-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: certs, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: certs) }
        let mk = try Command.run("/usr/bin/env", ["python3", Paths.packageRoot + "/Tests/Origins/make_certs.py", certs])
        try #require(mk.status == 0, "\(mk.error)")
        let f = try Fixture(etcd: 1, certs: certs)
        defer { f.stop() }
        let (etcd, root, originPort) = (f.etcd, f.root, f.originPort)
        let good = try Self.startPOP(
            0, etcd: etcd, originPort: originPort, root: root,
            extra: "  tls: { ca: \(certs)/ca.pem, cert: \(certs)/good.pem, key: \(certs)/good.key }")
        defer { good.server.stop() }
        let noCert = try Self.startPOP(
            1, etcd: etcd, originPort: originPort, root: root, extra: "  tls: { ca: \(certs)/ca.pem }")
        defer { noCert.server.stop() }
        #expect(
            Poll.seconds(limit: 10, every: 0.1) { good.votes()["pop0"] == true } != nil,
            "votes over TLS: \(good.cluster)")
        #expect(good.cluster["connected"] as? Bool == true)
        usleep(1_000_000)
        #expect(noCert.cluster["connected"] as? Bool == false)
        #expect((noCert.cluster["lastError"] as? String ?? "").isEmpty == false, "\(noCert.cluster)")
        #expect(good.votes()["pop1"] == nil, "a POP without a client certificate wrote nothing")
        #expect(noCert.answer() == Self.na, "and serves on its own verdicts")
    }
}
