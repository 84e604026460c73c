import Foundation
import OriginSupport
import Testing

/// The bundled config in a temporary folder with free ports: its own zones, state file, admin port.
struct GSLBSetup {
    let dir: String
    let config: String
    let adminPort: Int

    init(slowStart: Int = 60, extraName: String = "", editConfig: (String) -> String = { $0 }) throws {
        dir = try Paths.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: dir + "/zones", withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            atPath: Paths.packageRoot + "/zones/example.com.zone", toPath: dir + "/zones/example.com.zone")
        adminPort = FreePort.pick()
        var text = try String(contentsOfFile: Paths.packageRoot + "/lodestar.yaml", encoding: .utf8)
        text = text.replacingOccurrences(
            of: "database: geo/sample.mmdb", with: "database: \(Paths.packageRoot)/geo/sample.mmdb")
        text = text.replacingOccurrences(of: "127.0.0.1:5380", with: "127.0.0.1:\(adminPort)")
        text = text.replacingOccurrences(of: "slow-start: 60", with: "slow-start: \(slowStart)")
        text = editConfig(text)
        config = dir + "/lodestar.yaml"
        try text.write(toFile: config, atomically: true, encoding: .utf8)
    }

    /// A copy of the database at `source` in the setup's folder, which the config then names
    /// (the tests replace it there while the server runs); its path.
    @discardableResult
    func copyDatabase(_ source: String) throws -> String {
        let db = dir + "/city.mmdb"
        try FileManager.default.copyItem(atPath: source, toPath: db)
        try useDatabase(db)
        return db
    }

    /// Points the config's geo database at `path` instead of the sample.
    func useDatabase(_ path: String) throws {
        let text = try String(contentsOfFile: config, encoding: .utf8)
        try text.replacingOccurrences(of: "\(Paths.packageRoot)/geo/sample.mmdb", with: path)
            .write(toFile: config, atomically: true, encoding: .utf8)
    }

    func start(timeout: Double = 15) throws -> LodestarProcess {
        try LodestarProcess(zones: dir + "/zones", config: config, startupTimeout: timeout)
    }

    /// An admin API call through curl; returns the body. A POST says its body is JSON, as the
    /// API requires (`contentType` replaces that, for the tests of the requirement).
    @discardableResult
    func admin(
        _ method: String, _ path: String, _ body: String? = nil, token: String? = nil, status: Bool = false,
        contentType: String? = "application/json", headers: [String] = []
    ) throws -> String {
        // A change without a token goes through the control socket, as lodestar ctl sends it: the
        // TCP listener takes none without one.
        var args =
            method == "POST" && token == nil && headers.isEmpty
            ? [
                "-s", "-X", method, "--unix-socket", dir + "/.lodestar.sock", "http://localhost\(path)", "--max-time",
                "5"
            ]
            : ["-s", "-X", method, "http://127.0.0.1:\(adminPort)\(path)", "--max-time", "5"]
        if let body { args += ["-d", body] }
        if method == "POST", let contentType { args += ["-H", "Content-Type: \(contentType)"] }
        for h in headers { args += ["-H", h] }
        if let token { args += ["-H", "Authorization: Bearer \(token)"] }
        if status { args += ["-o", "/dev/null", "-w", "%{http_code}"] }
        return try Command.run("/usr/bin/curl", args, timeout: 10).output
    }

    func remove() { try? FileManager.default.removeItem(atPath: dir) }
}

extension DigResult {
    /// The ECS option dig printed: (source, scope), e.g. "198.51.100.0/24/24" → (24, 24).
    var ecs: (source: Int, scope: Int)? {
        guard let o = options.first(where: { $0.hasPrefix("CLIENT-SUBNET: ") }) else { return nil }
        let parts = o.dropFirst(15).split(separator: "/")
        guard parts.count == 3, let s = Int(parts[1]), let sc = Int(parts[2]) else { return nil }
        return (s, sc)
    }

    var addresses: [String] { answer.compactMap { $0.split(separator: " ").last.map(String.init) } }
    var ttl: Int? { answer.first.flatMap { Int($0.split(separator: " ")[1]) } }
}

@Suite("Load-balanced names", .serialized)
struct GSLBTests {
    static func region(_ address: String) -> String {
        if address.hasPrefix("192.0.2.") || address.hasPrefix("2001:db8:1:") { return "na" }
        if address.hasPrefix("198.51.100.") || address.hasPrefix("2001:db8:2:") { return "eu" }
        if address.hasPrefix("203.0.113.") || address.hasPrefix("2001:db8:3:") { return "ap" }
        return "?"
    }

    @Test(
        "the bundled example: clients on each continent get their region, with the merged ECS scope",
        .timeLimit(.minutes(1)))
    func bundledExample() throws {
        let setup = try GSLBSetup()
        defer { setup.remove() }
        let server = try setup.start()
        defer { server.stop() }
        let cases: [(String, String, String, Int)] = [
            ("198.51.100.0/24", "A", "eu", 24),  // Berlin
            ("198.51.100.77/32", "A", "eu", 24),  // a longer source: the scope is the network's
            ("203.0.113.0/25", "A", "ap", 24),  // Tokyo and Sydney both map to ap: one /24
            ("203.0.113.128/25", "A", "ap", 24),
            ("2001:db8:3::/48", "AAAA", "ap", 48),  // Tokyo over IPv6
            ("2001:db8:2::/56", "AAAA", "eu", 48),
            ("2001:db8:5::/48", "A", "eu", 48)  // Johannesburg: AF → eu-central
        ]
        for (subnet, type, want, scope) in cases {
            let r = try server.dig("www.example.com", type, "+subnet=\(subnet)")
            #expect(r.status == "NOERROR" && r.flags.contains("aa"), "\(r)")
            #expect(r.addresses.count == 1 && Self.region(r.addresses[0]) == want, "\(subnet): \(r)")
            #expect(r.ecs?.scope == scope, "\(subnet): \(r)")
            #expect(r.ttl == 60)
        }
        // North America: the two /25s (San Francisco, New York) and everything unknown around them get na.
        let na = try server.dig("www.example.com", "A", "+subnet=192.0.2.0/24")
        #expect(Self.region(na.addresses.first ?? "") == "na")
        #expect((na.ecs?.scope ?? 99) <= 24, "\(na)")
        // No ECS: the source address (127.0.0.1, not in the database) → the configured order.
        let plain = try server.dig("www.example.com", "A")
        #expect(Self.region(plain.addresses.first ?? "") == "na" && plain.ecs == nil)
        // Source prefix 0: scope 0 (RFC 7871 §7.1.2), answer for the source address.
        #expect(try server.dig("www.example.com", "A", "+subnet=0.0.0.0/0").ecs?.scope == 0)
        // A static name echoes ECS with scope 0; a non-zero scope in a query is FORMERR (RFC 7871 §7.1.1).
        #expect(try server.dig("mail.example.com", "A", "+subnet=198.51.100.0/24").ecs?.scope == 0)
        // Other types at the load-balanced name come from the zone; CNAMEs to it are followed.
        #expect(try server.dig("www.example.com", "MX").status == "NOERROR")
        let api = try server.dig("api.example.com", "A", "+subnet=198.51.100.0/24")
        #expect(api.answer.first == "api.example.com. 3600 IN CNAME www.example.com.")
        #expect(api.answer.count == 2 && Self.region(api.addresses.last ?? "") == "eu", "\(api)")
        #expect(api.ecs?.scope == 24)
    }

    @Test(
        "GeoLite2-City: real clients on four continents, and every address inside the scope gets the same region",
        .timeLimit(.minutes(3)))
    func geoLite2() throws {
        let path = try #require(GeoLite2.path, "maxminddb-geolite2 is not installed")
        let setup = try GSLBSetup { $0.replacingOccurrences(of: "\(Paths.packageRoot)/geo/sample.mmdb", with: path) }
        defer { setup.remove() }
        let server = try setup.start(timeout: 90)
        defer { server.stop() }
        // Addresses from MaxMind's own test data and well-known networks; expectations by continent.
        let cases: [(String, String)] = [
            ("81.2.69.160", "eu"),  // GB
            ("89.160.20.112", "eu"),  // SE
            ("8.8.8.0", "na"),  // US
            ("24.24.24.0", "na"),  // US
            ("1.1.1.0", "ap"),  // AU (OC)
            ("202.196.224.0", "ap"),  // PH (AS)
            ("200.160.0.0", "na"),  // BR (SA → us-east)
            ("41.0.0.0", "eu")  // ZA (AF → eu-central)
        ]
        var rng: UInt32 = 12345
        for (address, want) in cases {
            let r = try server.dig("www.example.com", "A", "+subnet=\(address)/24")
            #expect(Self.region(r.addresses.first ?? "") == want, "\(address): \(r)")
            let scope = try #require(r.ecs?.scope, "\(r)")
            #expect(scope > 0 && scope <= 32)
            // Another address in the scope's network gets the same region: the scope is honest.
            var octets = address.split(separator: ".").map { UInt32($0)! }
            let value = octets.reduce(0) { $0 << 8 | $1 }
            rng = rng &* 1_103_515_245 &+ 12345
            let hostBits = UInt32(32 - scope)
            let other =
                scope == 32 ? value : (value & ~((UInt32(1) << hostBits) &- 1)) | (rng & ((UInt32(1) << hostBits) &- 1))
            octets = [other >> 24, other >> 16 & 255, other >> 8 & 255, other & 255]
            let o = try server.dig(
                "www.example.com", "A", "+subnet=\(octets.map(String.init).joined(separator: "."))/32")
            #expect(Self.region(o.addresses.first ?? "") == want, "\(octets) in \(address)/\(scope): \(o)")
        }
    }

    @Test(
        "admin: a region down spreads its clients over the others, then ramps back in slow start; TTL drops meanwhile",
        .timeLimit(.minutes(2)))
    func failoverSpreadAndSlowStart() throws {
        let setup = try GSLBSetup(slowStart: 6)
        defer { setup.remove() }
        let server = try setup.start()
        defer { server.stop() }
        func regions(_ n: Int) throws -> [String: Int] {
            var hits: [String: Int] = [:]
            for _ in 0..<n {
                let r = try server.dig("www.example.com", "A", "+subnet=198.51.100.0/24")
                hits[Self.region(r.addresses.first ?? ""), default: 0] += 1
            }
            return hits
        }
        #expect(try regions(10) == ["eu": 10])
        let state = try setup.admin("POST", "/v1/pools/eu", #"{"state": "down"}"#)
        #expect(state.contains("\"overrides\""), "\(state)")
        // eu's clients now go to na and ap in proportion to capacity (equal here): both get a share.
        let spread = try regions(60)
        #expect(spread["eu"] == nil, "\(spread)")
        #expect((spread["na"] ?? 0) >= 10 && (spread["ap"] ?? 0) >= 10, "\(spread)")
        #expect(try server.dig("www.example.com", "A", "+subnet=198.51.100.0/24").ttl == 10)
        // Recovery: eu ramps back over 6 s. Early on most answers still go elsewhere; after the window all to eu.
        try setup.admin("POST", "/v1/pools/eu", #"{"state": "auto"}"#)
        let early = try regions(30)
        #expect((early["eu"] ?? 0) < 25, "\(early)")
        usleep(6_500_000)
        #expect(try regions(20) == ["eu": 20])
        #expect(try server.dig("www.example.com", "A", "+subnet=198.51.100.0/24").ttl == 60)
        // Unknown names and bad bodies are refused with a reason.
        #expect(try setup.admin("POST", "/v1/pools/nope", #"{"state": "down"}"#).contains("no pool named nope"))
        #expect(try setup.admin("POST", "/v1/pools/eu", #"{"state": "sideways"}"#).contains("state must be"))
    }

    @Test(
        "admin: a weight override takes effect on the next query, persists across reload and restart",
        .timeLimit(.minutes(2)))
    func weightsPersist() throws {
        let setup = try GSLBSetup(slowStart: 0)  // no ramp: an endpoint back from drain takes its weight at once
        defer { setup.remove() }
        var server = try setup.start()
        defer { server.stop() }
        // Drain eu-1: every eu answer is eu-2.
        try setup.admin("POST", "/v1/endpoints/eu-1", #"{"state": "drain"}"#)
        for _ in 0..<10 {
            #expect(try server.dig("www.example.com", "A", "+subnet=198.51.100.0/24").addresses == ["198.51.100.12"])
        }
        // Canary: eu-1 back with weight 0 → still never answered; weight 1000 → nearly always.
        try setup.admin("POST", "/v1/endpoints/eu-1", #"{"state": "auto", "weight": 0}"#)
        for _ in 0..<10 {
            #expect(try server.dig("www.example.com", "A", "+subnet=198.51.100.0/24").addresses == ["198.51.100.12"])
        }
        try setup.admin("POST", "/v1/endpoints/eu-1", #"{"weight": 1000}"#)
        var eu1 = 0
        for _ in 0..<20
        where try server.dig("www.example.com", "A", "+subnet=198.51.100.0/24").addresses == ["198.51.100.11"] {
            eu1 += 1
        }
        #expect(eu1 >= 17)
        // Reload keeps it; so does a restart (from the state file).
        try setup.admin("POST", "/v1/endpoints/eu-1", #"{"weight": 0}"#)
        #expect(try setup.admin("POST", "/v1/reload").contains("reloaded"))
        #expect(try server.dig("www.example.com", "A", "+subnet=198.51.100.0/24").addresses == ["198.51.100.12"])
        server.stop()
        server = try setup.start()
        #expect(server.log().contains("admin overrides restored"), "\(server.log())")
        for _ in 0..<5 {
            #expect(try server.dig("www.example.com", "A", "+subnet=198.51.100.0/24").addresses == ["198.51.100.12"])
        }
        let state = try setup.admin("GET", "/v1/state")
        #expect(state.contains("\"effectiveWeight\" : 0"), "\(state)")
        let metrics = try setup.admin("GET", "/metrics")
        #expect(metrics.contains("lodestar_answers_total{name=\"www.example.com.\",pool=\"eu\",region=\"eu-central\"}"))
        #expect(metrics.contains("lodestar_ecs_queries_total"))
        #expect(metrics.contains("lodestar_reloads_total{result=\"ok\"} 0"))  // the restart reset it
    }

    @Test(
        "all down: fail-open answers every address, servfail SERVFAILs, last-resort serves the zone's RRset",
        .timeLimit(.minutes(2)))
    func allDown() throws {
        for (mode, check) in [
            ("fail-open", { (r: DigResult) in r.status == "NOERROR" && r.answer.count == 6 }),
            ("servfail", { (r: DigResult) in r.status == "SERVFAIL" }),
            ("last-resort", { (r: DigResult) in r.addresses == ["192.0.2.10"] })
        ] {
            let setup = try GSLBSetup { $0.replacingOccurrences(of: "all-down: fail-open", with: "all-down: \(mode)") }
            defer { setup.remove() }
            let server = try setup.start()
            defer { server.stop() }
            for region in ["us-east", "eu-central", "ap-northeast"] {
                try setup.admin("POST", "/v1/regions/\(region)", #"{"state": "down"}"#)
            }
            let r = try server.dig("www.example.com", "A", "+subnet=198.51.100.0/24")
            #expect(check(r), "\(mode): \(r)")
        }
    }

    @Test(
        "a bad config is rejected with file:line by check, and on reload the old snapshot keeps serving",
        .timeLimit(.minutes(1)))
    func badConfig() throws {
        let setup = try GSLBSetup()
        defer { setup.remove() }
        let server = try setup.start()
        defer { server.stop() }
        let good = try String(contentsOfFile: setup.config, encoding: .utf8)
        let bad = good.replacingOccurrences(of: "        EU: [eu-central]", with: "        EU: [eu-west]")
        let badLine =
            bad.split(separator: "\n", omittingEmptySubsequences: false).firstIndex { $0.contains("eu-west") }! + 1
        try bad.write(toFile: setup.config, atomically: true, encoding: .utf8)
        let check = try Command.run(Paths.binary, ["check", "--config", setup.config], timeout: 30)
        #expect(check.status == 1)
        #expect(check.error.contains("\(setup.config):\(badLine): unknown region \"eu-west\""), "\(check.error)")
        server.signal(SIGHUP)
        #expect(ReloadTests.waitFor(5) { server.log().contains("reload failed") }, "\(server.log())")
        #expect(
            Self.region(try server.dig("www.example.com", "A", "+subnet=198.51.100.0/24").addresses.first ?? "") == "eu"
        )
        // A name outside every zone, and a corrupt database, are refused with the file named.
        try good.replacingOccurrences(of: "www.example.com:", with: "www.example.org:").write(
            toFile: setup.config, atomically: true, encoding: .utf8)
        let outside = try Command.run(Paths.binary, ["check", "--config", setup.config], timeout: 30)
        #expect(outside.error.contains("name www.example.org.: not inside any zone served"), "\(outside.error)")
        let corrupt = setup.dir + "/corrupt.mmdb"
        try "not a database".write(toFile: corrupt, atomically: true, encoding: .utf8)
        try good.write(toFile: setup.config, atomically: true, encoding: .utf8)
        let db = try Command.run(Paths.binary, ["check", "--config", setup.config, "--geo", corrupt], timeout: 30)
        #expect(db.status == 1 && db.error.contains("\(corrupt):0: geo database:"), "\(db.error)")
    }

    @Test("admin API with a token file: refused without the bearer token, served with it", .timeLimit(.minutes(1)))
    func token() throws {
        let setup = try GSLBSetup {
            $0.replacingOccurrences(
                of: "  state-file: .lodestar.state", with: "  state-file: .lodestar.state\n  token-file: admin.token")
        }
        defer { setup.remove() }
        try "s3cret-token\n".write(toFile: setup.dir + "/admin.token", atomically: true, encoding: .utf8)
        let server = try setup.start()
        defer { server.stop() }
        #expect(try setup.admin("GET", "/v1/state", status: true) == "401")
        #expect(try setup.admin("POST", "/v1/pools/eu", #"{"state": "down"}"#, token: "wrong", status: true) == "401")
        #expect(try setup.admin("GET", "/metrics", token: "s3cret-token", status: true) == "200")
        #expect(
            try setup.admin("POST", "/v1/pools/eu", #"{"state": "down"}"#, token: "s3cret-token", status: true) == "200"
        )
        #expect(
            Self.region(try server.dig("www.example.com", "A", "+subnet=198.51.100.0/24").addresses.first ?? "") != "eu"
        )
    }

    @Test(
        "explain prints the decision through the server's code; the admin API gives it as JSON", .timeLimit(.minutes(1))
    )
    func explain() throws {
        let setup = try GSLBSetup()
        defer { setup.remove() }
        let out = try Command.run(
            Paths.binary,
            [
                "explain", "www.example.com", "A", "--client", "198.51.100.7/24",
                "--config", setup.config
            ], timeout: 30)
        #expect(out.status == 0)
        for line in [
            "country: DE", "rule: geo: continent EU", "order: eu, na, ap", "pool shares: eu 100.0%",
            "ECS scope: /24", "TTL: 60", "IN A 198.51.100.1"
        ] {
            #expect(out.output.contains(line), "\(line) in \(out.output)")
        }
        let server = try setup.start()
        defer { server.stop() }
        let json = try setup.admin("GET", "/v1/explain?name=www.example.com&type=AAAA&client=2001:db8:3::1/48")
        #expect(json.contains("\"ecsScope\" : 48") && json.contains("2001:db8:3::11"), "\(json)")
    }
}
