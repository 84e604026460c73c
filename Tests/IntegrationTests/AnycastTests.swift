import Foundation
import OriginSupport
import Testing

/// The bundled example with `all-down: servfail` (so the self-check fails when every pool is set
/// down) and an `anycast:` section for the BIRD topology.
struct AnycastSetup {
    let setup: GSLBSetup
    let birds: BirdTopology

    init(minOtherPaths: Int = 0, extra: String = "") throws {
        let birds = try BirdTopology()
        self.birds = birds
        setup = try GSLBSetup(slowStart: 0) { text in
            text.replacingOccurrences(of: "all-down: fail-open", with: "all-down: servfail")
                + birds.anycastConfig(minOtherPaths: minOtherPaths, extra: extra)
        }
        #expect(birds.b.waitEstablished("from_a"), "A–B session:\n\(birds.a.diagnose())\n\(birds.b.diagnose())")
    }

    /// Every pool down (the self-check's query then gets SERVFAIL), or back to automatic.
    func pools(_ state: String) throws {
        for p in ["na", "eu", "ap"] { try setup.admin("POST", "/v1/pools/\(p)", "{\"state\": \"\(state)\"}") }
    }

    func remove() {
        birds.stop()
        setup.remove()
    }
}

@Suite("Anycast route health with real BIRD 2", .serialized)
struct AnycastTests {
    static let service = BirdTopology.service

    @Test(
        "announced after the self-check passes; withdrawn when it fails and back on recovery, other routes and the session untouched",
        .timeLimit(.minutes(2)))
    func withdrawAndAnnounce() throws {
        let s = try AnycastSetup()
        defer { s.remove() }
        let server = try s.setup.start()
        defer { server.stop() }
        // rise 2 × 0.5 s, then the enable reaches B through BGP.
        let first = s.birds.b.wait(Self.service, present: true, limit: 10)
        #expect(first != nil, "announced: \(server.log())")
        #expect(s.birds.b.has(BirdTopology.other))
        let session = try s.birds.b.birdc("show protocols from_a")
        let since = session.split(separator: "\n").first { $0.hasPrefix("from_a") }.map {
            $0.split(separator: " ", omittingEmptySubsequences: true)[4]
        }

        var figures: [String] = []
        for round in 0..<2 {
            try s.pools("down")
            let gone = s.birds.b.wait(Self.service, present: false, limit: 6)
            // fall 3 × interval 0.5 s + 1 s.
            #expect(gone != nil && gone! <= 3 * 0.5 + 1, "withdrawn after \(String(describing: gone)) s")
            #expect(s.birds.b.has(BirdTopology.other), "the other static route stays")
            try s.pools("auto")
            let back = s.birds.b.wait(Self.service, present: true, limit: 6)
            #expect(back != nil && back! <= 2 * 0.5 + 1, "announced again after \(String(describing: back)) s")
            figures.append(
                "round \(round + 1): withdrawn after \(String(format: "%.2f", gone ?? -1)) s, back after \(String(format: "%.2f", back ?? -1)) s"
            )
        }
        print("anycast figures (self-check interval 0.5 s, fall 3, rise 2): " + figures.joined(separator: "; "))
        let after = try s.birds.b.birdc("show protocols from_a")
        let sinceAfter = after.split(separator: "\n").first { $0.hasPrefix("from_a") }.map {
            $0.split(separator: " ", omittingEmptySubsequences: true)[4]
        }
        #expect(
            since != nil && since == sinceAfter,
            "the BGP session was never reset: \(session) / \(after); B's log: \(s.birds.b.log().suffix(1500))")
        #expect(
            server.log().contains(
                "anycast 198.51.100.53/32 (svc_dns4): withdraw (self-check failed: DNS rcode SERVFAIL)"),
            "\(server.log())")
        let status = try s.setup.admin("GET", "/v1/anycast")
        #expect(
            status.contains("\"birdState\" : \"up\"") && status.contains("\"exported\" : true")
                && status.contains("\"withdrawals\" : 2"), "\(status)")
        let metrics = try s.setup.admin("GET", "/metrics")
        #expect(metrics.contains("lodestar_anycast_announced{prefix=\"198.51.100.53/32\",protocol=\"svc_dns4\"} 1"))
        #expect(metrics.contains("lodestar_anycast_bird_connected 1"))
        #expect(
            metrics.contains(
                "lodestar_anycast_prefix_command_seconds{prefix=\"198.51.100.53/32\",protocol=\"svc_dns4\"} 0.0"),
            "a sub-second enable/disable round trip")
        #expect(status.contains("\"lastCommandCode\" : 0"), "\(status)")
    }

    @Test("a withdrawal survives birdc configure and a restart of BIRD", .timeLimit(.minutes(2)))
    func durable() throws {
        let s = try AnycastSetup()
        defer { s.remove() }
        let server = try s.setup.start()
        defer { server.stop() }
        #expect(s.birds.b.wait(Self.service, present: true, limit: 10) != nil)
        try s.pools("down")
        #expect(s.birds.b.wait(Self.service, present: false, limit: 6) != nil)
        // An operator's configure re-reads the config: the include says withdrawn.
        let out = try s.birds.a.birdc("configure")
        #expect(out.contains("Reconfigured"), "\(out)")
        usleep(1_000_000)
        #expect(!s.birds.b.has(Self.service), "configure resurrected the prefix")
        #expect(try s.birds.a.birdc("show protocols svc_dns4").contains("down"))
        // BIRD restarts: it comes up withdrawn from the include, lodestar reconnects and re-asserts.
        s.birds.a.stop()
        try s.birds.a.start()
        #expect(s.birds.b.waitEstablished("from_a"), "\(s.birds.a.diagnose())\n\(s.birds.b.diagnose())")
        usleep(3_000_000)
        #expect(!s.birds.b.has(Self.service), "a restart resurrected the prefix")
        #expect(s.birds.b.has(BirdTopology.other))
        // Recovery after the restart: lodestar reconnected and announces again.
        try s.pools("auto")
        #expect(s.birds.b.wait(Self.service, present: true, limit: 10) != nil, "\(server.log())")
        #expect(server.log().contains("anycast: connected to BIRD"))
    }

    @Test(
        "never withdraw the last POP: kept with an alarm until another POP's path is visible", .timeLimit(.minutes(2)))
    func lastPOP() throws {
        let s = try AnycastSetup(minOtherPaths: 1)
        defer { s.remove() }
        let server = try s.setup.start()
        defer { server.stop() }
        #expect(s.birds.b.wait(Self.service, present: true, limit: 10) != nil)
        try s.pools("down")
        usleep(3_000_000)
        #expect(s.birds.b.has(Self.service), "no other POP visible: still announced")
        let status = try s.setup.admin("GET", "/v1/anycast")
        #expect(status.contains("only 0 other path(s) visible, fewer than the minimum 1"), "\(status)")
        #expect(
            try s.setup.admin("GET", "/metrics").contains(
                "lodestar_anycast_alarm{prefix=\"198.51.100.53/32\",protocol=\"svc_dns4\"} 1"))
        #expect(server.log().contains("ALARM"))
        // Another POP (C) announces the prefix to A: now the withdrawal is safe.
        let c = try s.birds.startC()
        defer { c.stop() }
        #expect(s.birds.a.waitEstablished("from_c"), "\(s.birds.a.diagnose())")
        #expect(
            s.birds.b.wait(Self.service, present: false, limit: 10) != nil,
            "withdrawn once C's path is seen: \(server.log())")
        #expect(try s.setup.admin("GET", "/v1/anycast").contains("\"otherPaths\" : 1"))
    }

    @Test(
        "after a crash, a restarted lodestar adopts the announcement and the guard still holds", .timeLimit(.minutes(2))
    )
    func adoptAfterCrash() throws {
        let s = try AnycastSetup(minOtherPaths: 1)
        defer { s.remove() }
        var server = try s.setup.start()
        #expect(s.birds.b.wait(Self.service, present: true, limit: 10) != nil)
        // Every pool down (kept in the state file), then a crash: nothing withdraws, BIRD keeps announcing.
        try s.pools("down")
        usleep(2_000_000)
        #expect(s.birds.b.has(Self.service), "the guard keeps the only POP announced")
        server.signal(SIGKILL)
        server.stop()
        server = try s.setup.start()
        defer { server.stop() }
        usleep(3_000_000)
        #expect(
            s.birds.b.has(Self.service),
            "the restart did not drop the last POP while its self-check fails: \(server.log())")
        #expect(server.log().contains("already announced by BIRD"))
        #expect(try s.setup.admin("GET", "/v1/anycast").contains("fewer than the minimum 1"))
    }

    @Test(
        "soft drain: GRACEFUL_SHUTDOWN reaches the peer first, the withdrawal follows after drain-time",
        .timeLimit(.minutes(2)))
    func drain() throws {
        let s = try AnycastSetup(extra: "  drain-time: 2")
        defer { s.remove() }
        let server = try s.setup.start()
        defer { server.stop() }
        #expect(s.birds.b.wait(Self.service, present: true, limit: 10) != nil)
        try s.pools("down")
        let t0 = Date()
        let drained = try Poll.seconds(limit: 5, every: 0.02) {
            let all = try s.birds.b.birdc("show route \(Self.service) all")
            return all.contains("BGP.community: (65535,0)") && all.contains("BGP.local_pref: 0")
        }
        #expect(drained != nil, "B saw the GRACEFUL_SHUTDOWN community: \(server.log())")
        #expect(s.birds.b.has(Self.service), "still announced while draining")
        let gone = s.birds.b.wait(Self.service, present: false, limit: 5)
        #expect(gone != nil && Date().timeIntervalSince(t0) - (drained ?? 0) >= 1.5, "withdrawn after the drain time")
        #expect(server.log().contains("anycast 198.51.100.53/32 (svc_dns4): drain"))
    }

    @Test("maintenance override; SIGTERM withdraws before exit", .timeLimit(.minutes(2)))
    func overrideAndShutdown() throws {
        let s = try AnycastSetup()
        defer { s.remove() }
        let server = try s.setup.start()
        #expect(s.birds.b.wait(Self.service, present: true, limit: 10) != nil)
        try s.setup.admin("POST", "/v1/anycast/svc_dns4", #"{"state": "withdraw"}"#)
        #expect(s.birds.b.wait(Self.service, present: false, limit: 3) != nil)
        #expect(try s.setup.admin("GET", "/v1/anycast").contains("\"override\" : \"withdraw\""))
        #expect(try s.setup.admin("POST", "/v1/anycast/nope", #"{"state": "withdraw"}"#, status: true) == "404")
        try s.setup.admin("POST", "/v1/anycast/svc_dns4", #"{"state": "auto"}"#)
        #expect(s.birds.b.wait(Self.service, present: true, limit: 3) != nil)
        // SIGTERM: the route leaves B while lodestar still answers (shutdown-delay 1 s).
        server.signal(SIGTERM)
        let gone = s.birds.b.wait(Self.service, present: false, limit: 3)
        #expect(gone != nil && gone! < 1, "withdrawn at once on SIGTERM: \(String(describing: gone))")
        #expect(
            try server.dig("www.example.com", "A", "+tries=1", "+time=1").status == "NOERROR",
            "still answering during the delay")
        server.stop()
        #expect(server.log().contains("withdrawing the anycast prefixes"))
    }

    @Test(
        "no BIRD socket: DNS keeps serving, the API says why; BIRD appearing later gets the announcement",
        .timeLimit(.minutes(2)))
    func missingSocket() throws {
        let birds = try BirdTopology()
        defer { birds.stop() }
        birds.a.stop()
        try? FileManager.default.removeItem(atPath: birds.a.socket)  // a killed BIRD may leave it
        let setup = try GSLBSetup(slowStart: 0) { $0 + birds.anycastConfig() }
        defer { setup.remove() }
        let server = try setup.start()
        defer { server.stop() }
        #expect(try server.dig("www.example.com", "A").status == "NOERROR")
        usleep(1_500_000)
        let status = try setup.admin("GET", "/v1/anycast")
        #expect(status.contains("\"connected\" : false") && status.contains("a.ctl: no such socket"), "\(status)")
        #expect(try setup.admin("GET", "/metrics").contains("lodestar_anycast_bird_connected 0"))
        #expect(server.log().contains("cannot reach BIRD"))
        try birds.a.start()
        #expect(birds.b.waitEstablished("from_a"), "\(birds.a.diagnose())\n\(birds.b.diagnose())")
        #expect(
            birds.b.wait(Self.service, present: true, limit: 40) != nil, "announced once BIRD is there: \(server.log())"
        )
    }
}
