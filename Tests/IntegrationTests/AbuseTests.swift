import Foundation
import OriginSupport
import Testing

/// Abusive clients, local shortages and a hung peer against the real binary: each must leave the
/// server answering, the prober's verdicts and the routes as they were.
@Suite("Abusive clients, exhausted descriptors, a hung BIRD", .serialized)
struct AbuseTests {
    static func write(_ text: String) throws -> (dir: String, path: String) {
        let dir = try Paths.temporaryDirectory()
        let path = dir + "/lodestar.yaml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return (dir, path)
    }

    static func curl(_ args: [String]) throws -> Command.Result {
        try Command.run("/usr/bin/curl", ["-s", "--max-time", "5"] + args, timeout: 10)
    }

    static func python(_ script: String, _ args: [String], timeout: Double = 90) throws -> Command.Result {
        try Command.run(
            "/usr/bin/env", ["python3", Paths.packageRoot + "/Tests/Abuse/" + script] + args, timeout: timeout)
    }

    @Test(
        "garbage, a 0xFFFF length, half frames, one octet then silence, a trickle, too many connections from one address and a client that never reads: each bounded, every answer unchanged",
        .timeLimit(.minutes(2)))
    func abusiveTCP() throws {
        let (dir, path) = try Self.write(
            "server: { tcp-message-timeout: 1, tcp-idle-timeout: 4, tcp-max-connections-per-client: 8 }\n")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try LodestarProcess(config: path)
        defer { server.stop() }
        let before = try server.dig("www.example.com", "A").answer
        let r = try Self.python("tcp_abuse.py", ["\(server.port)", "1", "8", "\(server.pid)"])
        #expect(r.status == 0, "\(r.output)\(r.error)")
        #expect(server.process.isRunning)
        #expect(try server.dig("www.example.com", "A").answer == before)
        #expect(try server.dig("www.example.com", "A", "+tcp").answer == before)
        // The connections closed over the per-client limit are said, a line every 10 s at most.
        let refused = server.log().components(separatedBy: "\n").filter {
            $0.contains("closed: over tcp-max-connections")
        }
        #expect(!refused.isEmpty && refused.count <= 3, "\(refused.count) lines: \(refused.prefix(3))")
    }

    @Test(
        "2,000 slow TCP clients under ulimit -n 1024: UDP keeps answering, the prober keeps its verdict, nothing is withdrawn",
        .timeLimit(.minutes(2)))
    func descriptorExhaustion() throws {
        let originPort = FreePort.pick()
        let origins = try Origins(["\(originPort)"])
        defer { origins.stop() }
        let admin = FreePort.pick()
        let dir = try Paths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (cdir, path) = try Self.write(
            """
            server: { tcp-max-connections: 5000, tcp-idle-timeout: 30, tcp-message-timeout: 30 }
            admin: { listen: "127.0.0.1:\(admin)" }
            regions: { here: { coordinates: [0, 0] } }
            checks: { web: { type: http, port: \(originPort), path: /health, interval: 0.5, timeout: 0.3, rise: 1, fall: 1 } }
            pools: { p: { region: here, check: web, endpoints: [ { name: origin, address: 127.0.0.1 } ] } }
            geo: { database: \(Paths.packageRoot)/geo/sample.mmdb }
            names: { lb.example.com: { pools: [p] } }
            anycast:
              socket: \(dir)/no-bird.ctl
              include-file: \(dir)/anycast.conf
              self-check: { query: example.com, qtype: SOA, interval: 0.5, timeout: 0.3, rise: 1, fall: 1 }
              prefixes: [ { prefix: 198.51.100.53/32, protocol: svc } ]

            """)
        defer { try? FileManager.default.removeItem(atPath: cdir) }
        let server = try LodestarProcess(config: path, launcher: ["/usr/bin/prlimit", "--nofile=1024:1024"])
        defer { server.stop() }
        #expect(
            server.log().contains("TCP connections are capped at"),
            "the shortfall is said at start: \(server.log().suffix(1500))")
        // Both up before the flood.
        _ = Poll.seconds(limit: 10, every: 0.1) {
            (try? Self.curl(["http://127.0.0.1:\(admin)/v1/anycast"]).output.contains("\"desired\" : \"announce\""))
                == true
        }
        let r = try Self.python("slow_clients.py", ["\(server.port)", "2000", "6"])
        #expect(r.status == 0, "\(r.output)\(r.error)")
        let state = try Self.curl(["http://127.0.0.1:\(admin)/v1/state"]).output
        #expect(!state.contains("\"up\" : false"), "the origin stayed up: \(state.prefix(3000))")
        let anycast = try Self.curl(["http://127.0.0.1:\(admin)/v1/anycast"]).output
        #expect(anycast.contains("\"desired\" : \"announce\""), "\(anycast)")
        #expect(!server.log().contains(": down ("), "\(server.log().suffix(3000))")
        #expect(!server.log().contains("withdraw ("), "\(server.log().suffix(3000))")
        #expect(server.process.isRunning)
    }

    @Test(
        "a hung BIRD (accepts and never answers, or never accepts): /metrics and /v1/anycast answer at once, SIGTERM exits",
        .timeLimit(.minutes(2)), arguments: ["silent", "noaccept"])
    func hungBird(mode: String) throws {
        let dir = try Paths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fake = Process()
        fake.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        fake.arguments = ["python3", Paths.packageRoot + "/Tests/Abuse/hung_bird.py", dir + "/bird.ctl", mode, "60"]
        try fake.run()
        defer {
            kill(fake.processIdentifier, SIGKILL)
            fake.waitUntilExit()
        }
        _ = Poll.seconds(limit: 5) { FileManager.default.fileExists(atPath: dir + "/bird.ctl") }
        var fillers: [Int32] = []
        defer { for fd in fillers { close(fd) } }
        if mode == "noaccept" {
            // Fill its backlog, as clients of a stopped BIRD would.
            for _ in 0..<4 {
                let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
                var addr = sockaddr_un()
                addr.sun_family = sa_family_t(AF_UNIX)
                withUnsafeMutableBytes(of: &addr.sun_path) { raw in
                    let p = Array((dir + "/bird.ctl").utf8)
                    raw.copyBytes(from: p)
                    raw[p.count] = 0
                }
                _ = withUnsafePointer(to: &addr) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        connect(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                    }
                }
                fillers.append(s)
            }
        }
        let admin = FreePort.pick()
        let (cdir, path) = try Self.write(
            """
            admin: { listen: "127.0.0.1:\(admin)" }
            anycast:
              socket: \(dir)/bird.ctl
              include-file: \(dir)/anycast.conf
              self-check: { query: example.com, qtype: SOA, interval: 0.5, timeout: 0.3, rise: 1, fall: 1 }
              shutdown-delay: 0.5
              prefixes: [ { prefix: 198.51.100.53/32, protocol: svc } ]

            """)
        defer { try? FileManager.default.removeItem(atPath: cdir) }
        let server = try LodestarProcess(config: path)
        for _ in 0..<15 {
            let t0 = Date()
            let m = try Self.curl(["http://127.0.0.1:\(admin)/metrics"])
            let a = try Self.curl(["http://127.0.0.1:\(admin)/v1/anycast"])
            let took = Date().timeIntervalSince(t0)
            #expect(
                m.output.contains("lodestar_queries_total") && a.output.contains("198.51.100.53"),
                "\(m.output.suffix(300)) \(a.output)")
            #expect(took < 1, "/metrics and /v1/anycast took \(took) s with BIRD hung")
            usleep(200_000)
        }
        #expect(try server.dig("example.com", "SOA").status == "NOERROR")
        let t0 = Date()
        server.signal(SIGTERM)
        let deadline = Date().addingTimeInterval(8)
        while server.process.isRunning && Date() < deadline { usleep(20_000) }
        let took = Date().timeIntervalSince(t0)
        #expect(!server.process.isRunning, "still running 8 s after SIGTERM: \(server.log().suffix(2000))")
        #expect(took < 6, "SIGTERM took \(took) s")
        let include = (try? String(contentsOfFile: dir + "/anycast.conf", encoding: .utf8)) ?? ""
        #expect(include.contains("LODESTAR_SVC_DOWN = 1"), "the include file says withdrawn: \(include)")
        server.stop()
    }

    @Test(
        "the admin API against a browser: JSON-only POSTs, Host and Origin checked, 413, a connection cap; /metrics answers during a reload; concurrent reloads end with the newest config",
        .timeLimit(.minutes(2)))
    func adminAgainstBrowsers() throws {
        let setup = try GSLBSetup()
        defer { setup.remove() }
        let server = try setup.start()
        defer { server.stop() }
        let url = "http://127.0.0.1:\(setup.adminPort)"
        func code(_ args: [String]) throws -> String {
            try Self.curl(["-o", "/dev/null", "-w", "%{http_code}"] + args).output
        }
        // A cross-site form post: no JSON content type.
        #expect(try code(["-X", "POST", "\(url)/v1/pools/eu", "-d", #"{"state":"down"}"#]) == "415")
        #expect(
            try code(["-X", "POST", "\(url)/v1/pools/eu", "-H", "Content-Type: text/plain", "-d", #"{"state":"down"}"#])
                == "415")
        #expect(try code(["-X", "POST", "\(url)/v1/reload"]) == "415")
        // DNS rebinding: a page of evil.example reaching 127.0.0.1 under its own name.
        #expect(try code(["\(url)/v1/state", "-H", "Host: evil.example"]) == "403")
        #expect(try code(["\(url)/v1/state", "-H", "Host: evil.example:\(setup.adminPort)"]) == "403")
        #expect(try code(["\(url)/v1/state", "-H", "Host: localhost:\(setup.adminPort)"]) == "200")
        #expect(try code(["\(url)/v1/state", "-H", "Host: [::1]:\(setup.adminPort)"]) == "200")
        // A page elsewhere posting JSON (a CORS request carries its Origin).
        #expect(
            try code([
                "-X", "POST", "\(url)/v1/pools/eu", "-H", "Content-Type: application/json", "-H",
                "Origin: http://evil.example",
                "-d", #"{"state":"down"}"#
            ]) == "403")
        #expect(try code(["\(url)/v1/state", "-H", "Origin: http://127.0.0.1:\(setup.adminPort)"]) == "200")
        // A body over 64 KiB.
        let big = "{\"state\": \"down\", \"reason\": \"" + String(repeating: "x", count: 70_000) + "\"}"
        #expect(
            try code([
                "-X", "POST", "\(url)/v1/health/eu-1", "-H", "Content-Type: application/json", "--data-binary", big
            ]) == "413")
        let state = try setup.admin("GET", "/v1/state")
        #expect(!state.contains("\"down\""), "none of the refused requests changed anything")
        // More than 64 connections at once: the rest are closed, the API still answers after.
        let r = try Command.run(
            "/usr/bin/env",
            [
                "python3", "-c",
                """
                import socket,time
                held=[]
                for i in range(80):
                    s=socket.create_connection(("127.0.0.1",\(setup.adminPort)),timeout=2); held.append(s)
                time.sleep(0.5)
                closed=0
                for s in held:
                    s.settimeout(0.05)
                    try:
                        if s.recv(1)==b"": closed+=1
                    except socket.timeout: pass
                    except OSError: closed+=1
                print(closed)
                """
            ], timeout: 20)
        #expect(
            Int(r.output.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0 >= 16,
            "connections over the cap closed: \(r.output)\(r.error)")
        #expect(try code(["\(url)/metrics"]) == "200")
        // Reloads from SIGHUP and the API at once while the file changes: the last version written wins.
        let config = setup.dir + "/lodestar.yaml"
        let original = try String(contentsOfFile: config, encoding: .utf8)
        for v in 1...6 {
            let text = original.replacingOccurrences(of: "server:\n", with: "server:\n  version: v\(v)\n")
            try text.write(toFile: config, atomically: true, encoding: .utf8)
            server.signal(SIGHUP)
            _ = try? Self.curl(["-X", "POST", "\(url)/v1/reload", "-H", "Content-Type: application/json"])
        }
        // Meanwhile and after, /metrics answers quickly.
        for _ in 0..<10 {
            let t0 = Date()
            #expect(try code(["\(url)/metrics"]) == "200")
            #expect(Date().timeIntervalSince(t0) < 1)
        }
        let version = Poll.seconds(limit: 10, every: 0.2) {
            (try? server.dig("version.bind", "TXT", "CH").answer.joined())?.contains("v6") == true
        }
        let served = (try? server.dig("version.bind", "TXT", "CH").answer) ?? []
        #expect(version != nil, "the newest config is in force: \(served)")
    }
}
