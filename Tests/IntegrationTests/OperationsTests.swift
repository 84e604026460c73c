import Foundation
import OriginSupport
import Synchronization
import Testing

/// Running lodestar as a daemon: /health and /ready, the systemd notification protocol over a
/// real NOTIFY_SOCKET, log formats, the command line, `lodestar ctl`, metrics through promtool.
@Suite("Operations", .serialized)
struct OperationsTests {
    /// GET on the admin API through curl: (status, body).
    static func get(_ port: Int, _ path: String, token: String? = nil) -> (Int, String) {
        var args = ["-s", "--max-time", "3", "-w", "\n%{http_code}", "http://127.0.0.1:\(port)\(path)"]
        if let token { args += ["-H", "Authorization: Bearer \(token)"] }
        guard let r = try? Command.run("/usr/bin/curl", args, timeout: 5) else { return (0, "") }
        let lines = r.output.split(separator: "\n", omittingEmptySubsequences: false)
        return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
    }

    @Test(
        "/ready is 503 during the first round of checks and while stopping; /health is 200 throughout; no token needed",
        .timeLimit(.minutes(2)))
    func readiness() throws {
        // Origins that hang: the first round of checks takes the whole timeout (3 s).
        let c = try CheckedSetup(check: "interval: 4, timeout: 3, rise: 1, fall: 1, damping: false")
        defer { c.setup.remove() }
        let token = "ready-test-token"
        try token.write(toFile: c.setup.dir + "/admin.token", atomically: true, encoding: .utf8)
        var text = try String(contentsOfFile: c.setup.config, encoding: .utf8)
        text = text.replacingOccurrences(
            of: "  state-file: .lodestar.state",
            with: """
                  state-file: .lodestar.state
                  token-file: admin.token
                anycast:
                  socket: \(c.setup.dir)/no-bird.ctl
                  include-file: \(c.setup.dir)/anycast.conf
                  shutdown-delay: 3
                  prefixes:
                    - { prefix: 198.51.100.53/32, protocol: svc_dns4 }
                """)
        try text.write(toFile: c.setup.config, atomically: true, encoding: .utf8)
        let origins = try Origins(c.origins)
        defer { origins.stop() }
        for o in c.origins { try origins.mode(o, "hang") }
        let port = c.setup.adminPort
        nonisolated(unsafe) var seen: [(Int, String, Int)] = []
        let done = DispatchSemaphore(value: 0)
        let stop = Mutex(false)
        Thread {
            let deadline = Date().addingTimeInterval(40)
            while !stop.withLock({ $0 }) && Date() < deadline {
                let (r, body) = Self.get(port, "/ready")
                let (h, _) = Self.get(port, "/health")
                if r != 0 { seen.append((r, body, h)) }
                usleep(100_000)
            }
            done.signal()
        }.start()
        let server = try c.setup.start(timeout: 20)
        defer { server.stop() }
        let (r, _) = Self.get(port, "/ready")
        stop.withLock { $0 = true }
        done.wait()
        #expect(r == 200, "ready after the first round")
        let early = seen.filter { $0.0 == 503 }
        #expect(!early.isEmpty, "503 while the first round ran: \(seen.map(\.0))")
        #expect(early.allSatisfy { $0.1.contains("first round of health checks") }, "\(early.map(\.1))")
        #expect(seen.allSatisfy { $0.2 == 200 }, "/health always 200 without the token: \(seen.map(\.2))")
        #expect(
            seen.firstIndex { $0.0 == 200 }.map { i in seen[i...].allSatisfy { $0.0 == 200 } } ?? true,
            "once ready, stays ready: \(seen.map(\.0))")
        #expect(Self.get(port, "/metrics").0 == 200, "Prometheus scrapes without the token, as /health and /ready")
        #expect(Self.get(port, "/v1/state").0 == 401, "the rest still needs the token")
        #expect(Self.get(port, "/metrics", token: token).0 == 200)
        // SIGTERM: /ready turns 503 for the shutdown delay while DNS still answers.
        server.signal(SIGTERM)
        let turned = Poll.seconds(limit: 3, every: 0.05) { Self.get(port, "/ready").0 == 503 }
        #expect(turned != nil, "/ready turns 503 on SIGTERM")
        #expect(Self.get(port, "/ready").1.contains("stopping"))
        #expect(Self.get(port, "/health").0 == 200, "alive while draining")
        #expect(
            try server.dig("example.com", "SOA", "+tries=1", "+time=1").status == "NOERROR", "answers during the delay")
    }

    /// A NOTIFY_SOCKET as systemd makes it: a datagram socket the test reads.
    final class NotifySocket: @unchecked Sendable {
        let path = "/tmp/ls-notify-\(UUID().uuidString.prefix(8)).sock"
        let fd: Int32

        init() throws {
            fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
            var sa = sockaddr_un()
            sa.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &sa.sun_path) { raw in
                for (i, b) in path.utf8.enumerated() { raw[i] = b }
            }
            let r = withUnsafePointer(to: &sa) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
            guard r == 0 else { throw TestFailure("bind \(path): \(String(cString: strerror(errno)))") }
            // systemd's notify socket takes datagrams from the service's user: so must this one.
            chmod(path, 0o666)
            RawDNS.setTimeout(fd, 0.2)
        }

        /// Datagrams received within `seconds`, until `until` holds for one of them.
        func read(for seconds: Double, until: (String) -> Bool = { _ in false }) -> [String] {
            var out: [String] = []
            var buf = [UInt8](repeating: 0, count: 4096)
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                let n = recv(fd, &buf, buf.count, 0)
                guard n > 0 else { continue }
                let m = String(decoding: buf[0..<n], as: UTF8.self)
                out.append(m)
                if until(m) { break }
            }
            return out
        }

        deinit {
            close(fd)
            unlink(path)
        }
    }

    @Test(
        "systemd: READY=1 with STATUS, RELOADING=1 then READY=1 on SIGHUP, WATCHDOG=1 every half interval, STOPPING=1",
        .timeLimit(.minutes(1)))
    func notify() throws {
        let sock = try NotifySocket()
        let server = try LodestarProcess(
            zones: Paths.packageRoot + "/zones",
            environment: ["NOTIFY_SOCKET": sock.path, "WATCHDOG_USEC": "1000000"])
        defer { server.stop() }
        let start = sock.read(for: 5) { $0.contains("READY=1") }
        let ready = try #require(start.first { $0.contains("READY=1") }, "\(start)")
        #expect(ready.split(separator: "\n").contains { $0.hasPrefix("STATUS=serving 1 zones") }, "\(ready)")
        #expect(start.contains { $0 == "STATUS=first round of health checks" }, "\(start)")
        // Watchdog: 1 s asked, so a ping every 0.5 s.
        let pings = sock.read(for: 2.2).filter { $0 == "WATCHDOG=1" }.count
        #expect((3...6).contains(pings), "\(pings) WATCHDOG=1 in 2.2 s")
        server.signal(SIGHUP)
        let reload = sock.read(for: 5) { $0.contains("READY=1") }
        let r = try #require(reload.firstIndex { $0.contains("RELOADING=1") }, "\(reload)")
        #expect(reload[r].contains("MONOTONIC_USEC="), "\(reload[r])")
        #expect(reload[r...].contains { $0.contains("READY=1") && $0.contains("generation 2") }, "\(reload)")
        server.signal(SIGTERM)
        let end = sock.read(for: 5) { $0.contains("STOPPING=1") }
        #expect(end.contains { $0.contains("STOPPING=1") }, "\(end)")
    }

    @Test(
        "logs: --log-format json with fields as keys; under journald priorities and no timestamps; levels listed in --help",
        .timeLimit(.minutes(1)))
    func logs() throws {
        let dir = try Paths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for f in ["example.com.zone"] {
            try FileManager.default.copyItem(atPath: Paths.packageRoot + "/zones/" + f, toPath: dir + "/" + f)
        }
        try "$ORIGIN bad.test.\n@ 300 IN SOA a. b. 1 2 3 4 5\n@ 300 IN NS ns.\nwww 300 IN A 999.1.1.1\n"
            .write(toFile: dir + "/bad.test.zone", atomically: true, encoding: .utf8)
        let json = try LodestarProcess(zones: dir, extra: ["--log-format", "json"])
        json.stop()
        let lines = json.log().split(separator: "\n").map(String.init)
        var objects: [[String: String]] = []
        for l in lines {
            let o = try JSONSerialization.jsonObject(with: Data(l.utf8)) as? [String: String]
            objects.append(try #require(o, "not a JSON object: \(l)"))
        }
        #expect(objects.allSatisfy { $0["time"] != nil && $0["level"] != nil && $0["message"] != nil })
        let loaded = try #require(
            objects.first { $0["message"]?.hasPrefix("zone example.com. loaded") == true }, "\(lines)")
        #expect(loaded["zone"] == "example.com." && loaded["serial"] != nil, "\(loaded)")
        let problem = try #require(objects.first { $0["file"]?.hasSuffix("bad.test.zone") == true }, "\(lines)")
        #expect(problem["line"] == "4" && problem["level"] == "error", "\(problem)")
        // JOURNAL_STREAM naming stderr (the log file): `<N>` priorities, no timestamps of our own.
        let journal = try JournalRun(zones: dir)
        defer { journal.stop() }
        let jl = journal.lines()
        #expect(
            jl.contains {
                $0.hasPrefix("<6>zone example.com. loaded") && $0.hasSuffix("serial=2026112301 zone=example.com.")
            }, "\(jl)")
        #expect(jl.contains { $0.hasPrefix("<3>") && $0.contains("bad.test.zone:4") }, "\(jl)")
        #expect(
            !jl.contains {
                $0.contains("T") && $0.range(of: #"^<\d>\d{4}-\d\d-\d\dT"#, options: .regularExpression) != nil
            })
        let help = try Command.run(Paths.binary, ["serve", "--help"])
        #expect(
            help.output.contains("trace") && help.output.contains("critical") && help.output.contains("json"),
            "\(help.output)")
    }

    /// `lodestar serve` with stderr on a file and JOURNAL_STREAM naming that file, as systemd does.
    final class JournalRun: @unchecked Sendable {
        let process = Process()
        let path = NSTemporaryDirectory() + "lodestar-journal-\(UUID().uuidString).log"
        init(zones: String) throws {
            process.currentDirectoryURL = URL(fileURLWithPath: NSTemporaryDirectory())
            FileManager.default.createFile(atPath: path, contents: nil)
            var st = stat()
            stat(path, &st)
            process.executableURL = URL(fileURLWithPath: Paths.binary)
            process.arguments = [
                "serve", "--zones", zones, "--listen", "127.0.0.1:\(FreePort.pick())", "--rate-limit", "0"
            ]
            process.environment = ProcessInfo.processInfo.environment.merging([
                "JOURNAL_STREAM": "\(st.st_dev):\(st.st_ino)"
            ]) { $1 }
            let h = FileHandle(forWritingAtPath: path)
            process.standardError = h
            process.standardOutput = h
            try process.run()
            _ = Poll.seconds(limit: 10, every: 0.1) { self.lines().contains { $0.contains("serving on") } }
        }
        func lines() -> [String] {
            ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
        }
        func stop() {
            if process.isRunning { kill(process.processIdentifier, SIGTERM) }
            process.waitUntilExit()
            try? FileManager.default.removeItem(atPath: path)
        }
    }

    @Test(
        "command line: --version, --help names signals and exit codes, usage errors exit 64, errors on stderr",
        .timeLimit(.minutes(1)))
    func commandLine() throws {
        let v = try Command.run(Paths.binary, ["--version"])
        #expect(
            v.status == 0 && v.output.range(of: #"^\d+\.\d+\.\d+\n$"#, options: .regularExpression) != nil,
            "\(v.output)")
        let help = try Command.run(Paths.binary, ["--help"])
        for word in ["SIGHUP", "SIGTERM", "Exit codes", "64"] {
            #expect(help.output.contains(word), "\(word) in --help")
        }
        let bad = try Command.run(Paths.binary, ["serve", "--log-level", "loud"])
        #expect(bad.status == 64 && bad.output.isEmpty && bad.error.contains("loud"), "\(bad)")
        // A config that cannot be read is a problem of the file (serve: 2, check: 1), with the reason.
        let noConfig = try Command.run(Paths.binary, ["serve", "--config", "/nonexistent/l.yaml"])
        #expect(
            noConfig.status == 2
                && noConfig.error.contains("/nonexistent/l.yaml:0: cannot read the config file: No such file"),
            "\(noConfig)")
        let checkNoConfig = try Command.run(Paths.binary, ["check", "--config", "/nonexistent/l.yaml"])
        #expect(checkNoConfig.status == 1, "\(checkNoConfig)")
        let badUser = try Command.run(
            Paths.binary,
            [
                "serve", "--zones", Paths.packageRoot + "/zones", "--listen",
                "127.0.0.1:\(FreePort.pick())", "--user", "no-such-user-here"
            ])
        #expect(badUser.status == 2 && badUser.error.contains("no-such-user-here\": no such user"), "\(badUser)")
        let completion = try Command.run(Paths.binary, ["--generate-completion-script", "bash"])
        #expect(completion.status == 0 && completion.output.contains("ctl"), "completions know the subcommands")
    }

    @Test(
        "lodestar ctl: status, state, drain/undrain, weight, explain, reload, anycast; clear errors when not running",
        .timeLimit(.minutes(2)))
    func ctl() throws {
        let setup = try GSLBSetup(slowStart: 0) {
            $0.replacingOccurrences(
                of: "  state-file: .lodestar.state", with: "  state-file: .lodestar.state\n  token-file: admin.token")
        }
        defer { setup.remove() }
        try "ctl-token\n".write(toFile: setup.dir + "/admin.token", atomically: true, encoding: .utf8)
        func ctl(_ args: String...) throws -> Command.Result {
            try Command.run(Paths.binary, ["ctl"] + args + ["--config", setup.config], timeout: 30)
        }
        let down = try ctl("status")
        #expect(down.status == 1 && down.error.contains("not running"), "\(down)")
        let server = try setup.start()
        defer { server.stop() }
        let status = try ctl("status")
        #expect(status.status == 0, "\(status)")
        #expect(
            status.output.contains("ready") && status.output.contains("example.com.")
                && status.output.contains("2026112301"), "\(status.output)")
        let state = try ctl("state")
        #expect(
            state.output.split(separator: "\n").contains {
                $0.hasPrefix("eu-1 ") && $0.contains("198.51.100.11") && $0.contains(" up ")
            },
            "\(state.output)")
        #expect(try ctl("drain", "eu").status == 0)
        #expect(
            try ctl("state").output.split(separator: "\n").contains {
                $0.hasPrefix("eu ") && $0.contains("DOWN") && $0.contains("drain")
            })
        #expect(
            GSLBTests.region(try server.dig("www.example.com", "A", "+subnet=198.51.100.0/24").addresses.first ?? "")
                != "eu")
        #expect(try ctl("undrain", "eu").status == 0)
        #expect(
            GSLBTests.region(try server.dig("www.example.com", "A", "+subnet=198.51.100.0/24").addresses.first ?? "")
                == "eu")
        #expect(try ctl("weight", "eu-1", "0").status == 0)
        #expect(
            try ctl("state").output.split(separator: "\n").contains { $0.hasPrefix("eu-1 ") && $0.contains("weight 0") }
        )
        #expect(try ctl("weight", "eu-1", "auto").status == 0)
        let nope = try ctl("drain", "no-such-pool")
        #expect(nope.status == 1 && nope.error.contains("no region, pool or endpoint named no-such-pool"), "\(nope)")
        let explain = try ctl("explain", "www.example.com", "--client", "198.51.100.7")
        #expect(
            explain.status == 0 && explain.output.contains("answer: NOERROR") && explain.output.contains("rule: geo"),
            "\(explain.output)")
        let reload = try ctl("reload")
        #expect(reload.status == 0 && reload.output.contains("reloaded: generation 2"), "\(reload)")
        let anycast = try ctl("anycast")
        #expect(anycast.status == 1 && anycast.error.contains("anycast is not configured"), "\(anycast)")
        let wrongToken = try Command.run(
            Paths.binary, ["ctl", "status", "--admin", "127.0.0.1:\(setup.adminPort)"], timeout: 10)
        #expect(wrongToken.status == 1 && wrongToken.error.contains("bearer token"), "\(wrongToken)")
        // Over TCP with the token, a change is taken (remote use); the control socket needs none.
        let remote = try Command.run(
            Paths.binary,
            [
                "ctl", "drain", "eu", "--admin", "127.0.0.1:\(setup.adminPort)",
                "--token-file", setup.dir + "/admin.token"
            ], timeout: 10)
        #expect(remote.status == 0, "\(remote)")
        #expect(try ctl("undrain", "eu").status == 0)
    }

    @Test(
        "metrics pass promtool check metrics, with build_info, process_*, zone serials and the reload time",
        .timeLimit(.minutes(2)))
    func promtool() throws {
        let c = try CheckedSetup()
        defer { c.setup.remove() }
        // Anycast (BIRD absent: its families show the not-connected state) and rate limiting on.
        let text =
            try String(contentsOfFile: c.setup.config, encoding: .utf8) + """
                anycast:
                  socket: \(c.setup.dir)/no-bird.ctl
                  include-file: \(c.setup.dir)/anycast.conf
                  prefixes:
                    - { prefix: 198.51.100.53/32, protocol: svc_dns4 }

                """
        try text.write(toFile: c.setup.config, atomically: true, encoding: .utf8)
        let origins = try Origins(c.origins)
        defer { origins.stop() }
        let server = try c.setup.start()
        defer { server.stop() }
        _ = try server.dig("www.example.com", "A", "+subnet=192.0.2.0/24")
        let metrics = try c.setup.admin("GET", "/metrics")
        let file = c.setup.dir + "/metrics.txt"
        try metrics.write(toFile: file, atomically: true, encoding: .utf8)
        let check = try Command.run("/bin/sh", ["-c", "promtool check metrics < \(file)"], timeout: 20)
        #expect(check.status == 0 && check.output.isEmpty && check.error.isEmpty, "\(check.output)\(check.error)")
        for series in [
            "lodestar_build_info{version=\"", "process_cpu_seconds_total ", "process_resident_memory_bytes ",
            "process_open_fds ", "process_max_fds ", "process_start_time_seconds ",
            "lodestar_zone_serial{zone=\"example.com.\"} 2026112301", "lodestar_zone_loaded{zone=\"example.com.\"} 1",
            "lodestar_reload_timestamp_seconds ", "lodestar_ready 1", "lodestar_endpoint_effective_weight{",
            "lodestar_anycast_bird_connected 0", "lodestar_anycast_command_errors_total "
        ] {
            #expect(metrics.contains("\n" + series), "\(series) missing")
        }
        #expect(!metrics.contains("kind=\""), "no series that add up to others")
        #expect(
            !metrics.split(separator: "\n").contains { !$0.hasPrefix("#") && $0.hasSuffix(" -1") }, "no sentinel values"
        )
    }
}
