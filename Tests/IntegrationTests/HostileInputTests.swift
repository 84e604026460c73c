import Foundation
import OriginSupport
import Testing

/// Peers and files as an attacker, a broken peer or a half-finished write make them: each is a
/// clear error naming the file and line or the peer, bounded work, and the server goes on serving
/// what it served. Each case is one issue 24 found killing, hanging or emptying the server.
@Suite("Hostile peers and files", .serialized)
struct HostileInputTests {
    /// A `check` that must end by itself, not crash: its result.
    static func check(_ args: [String], timeout: Double = 60) throws -> Command.Result {
        let r = try Command.run(Paths.binary, ["check"] + args, timeout: timeout)
        // 128 + a signal: a trap (SIGILL 132, SIGTRAP 133), an abort (134) or a crash (139).
        #expect(r.status < 128, "check died (exit \(r.status)): \(r.error.suffix(400))")
        return r
    }

    /// `Tests/Abuse/lying_etcd.py` on a free loopback port in `mode`, for at most `seconds`.
    static func liar(_ mode: String, seconds: Int, counts: String? = nil) throws -> (Process, Int) {
        let port = FreePort.pick()
        let fake = Process()
        fake.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        fake.arguments =
            [Paths.packageRoot + "/Tests/Abuse/lying_etcd.py", "\(port)", mode, "\(seconds)"]
            + (counts.map { [$0] } ?? [])
        fake.standardOutput = FileHandle.nullDevice
        try fake.run()
        usleep(300_000)
        return (fake, port)
    }

    /// The bundled config with a one-POP cluster on the etcd at `port` (short lease and heartbeat).
    static func cluster(on port: Int) -> (String) -> String {
        {
            $0 + """

                cluster:
                  etcd: ["http://127.0.0.1:\(port)"]
                  prefix: /lodestar/test
                  pop: here
                  lease-ttl: 3
                  heartbeat: 1
                  timeout: 0.5

                """
        }
    }

    /// SIGKILL by pid (the test runner's children do not take SIGTERM), then reaped.
    static func stop(_ p: Process) {
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
    }

    static func write(_ text: String, _ path: String) throws {
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    // MARK: TCP as the unit runs it

    @Test(
        "Unprivileged (nobody, no capability) the server answers over TCP, and a truncated answer falls back to it",
        .enabled(if: LodestarProcess.dropsPrivileges, "needs root to drop to nobody"), .timeLimit(.minutes(1)))
    func tcpUnprivileged() throws {
        // LodestarProcess itself waits for a TCP answer: starting is the first assertion.
        let server = try LodestarProcess()
        defer { server.stop() }
        let st = PrivilegeTests.status(server.pid)
        #expect(st["Uid"]?.hasPrefix("65534") == true && st["CapEff"] == "0000000000000000", "\(st)")
        for _ in 0..<20 { #expect(try server.dig("example.com", "SOA", "+tcp").status == "NOERROR") }
    }

    // MARK: MaxMind databases

    @Test(
        "A damaged GeoLite2 file (truncated, or half a file run into a whole one) is refused by check --geo, with the file",
        .enabled(if: GeoLite2.path != nil, "needs the GeoLite2-City database"), .timeLimit(.minutes(2)))
    func damagedGeoRefused() throws {
        let real = try #require(GeoLite2.path)
        let dir = try Paths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let whole = try Data(contentsOf: URL(fileURLWithPath: real))
        let cases: [(String, Data)] = [
            ("truncated", whole.prefix(whole.count / 2)),
            ("first-half-then-whole", whole.prefix(whole.count / 2) + whole),
            ("tree-then-whole", whole.prefix(1_000_000) + whole),
            ("data-cut", whole.prefix(40_000_000) + whole)
        ]
        for (name, bytes) in cases {
            let path = dir + "/\(name).mmdb"
            try bytes.write(to: URL(fileURLWithPath: path))
            let r = try Self.check(["--zones", Paths.packageRoot + "/zones", "--geo", path])
            #expect(r.status == 1 && r.error.contains(path), "\(name): \(r.status) \(r.output) \(r.error)")
        }
        // --geo is checked even when no name of the config needs a database.
        let r = try Self.check(["--zones", Paths.packageRoot + "/zones", "--geo", "/etc/passwd"])
        #expect(r.status == 1 && r.error.contains("/etc/passwd"), "\(r.error)")
        let good = try Self.check(["--zones", Paths.packageRoot + "/zones", "--geo", real])
        #expect(good.status == 0 && good.output.contains("GeoLite2-City"), "\(good.error)")
        // A database of the wrong kind (an ASN database as geo.database) opens fine and would place
        // no client: refused when the names need a continent or a country.
        let asnPath = dir + "/asn.mmdb"
        let script = """
            from mmdb_writer import MMDBWriter
            from netaddr import IPSet
            w = MMDBWriter(ip_version=6, database_type="GeoLite2-ASN", ipv4_compatible=True)
            w.insert_network(IPSet(["81.0.0.0/9"]), {"autonomous_system_number": 64500})
            w.to_db_file("\(asnPath)")
            """
        _ = try Command.run("/usr/bin/env", ["python3", "-c", script])
        let wrong = try Self.check([
            "--config", Paths.packageRoot + "/lodestar.yaml", "--zones", Paths.packageRoot + "/zones", "--geo", asnPath
        ])
        #expect(
            wrong.status == 1 && wrong.error.contains(asnPath) && wrong.error.contains("no record holds a continent"),
            "\(wrong.status) \(wrong.error)")
    }

    @Test(
        "A half-written GeoLite2 update on reload: refused, the server lives and keeps the database it had",
        .enabled(if: GeoLite2.path != nil, "needs the GeoLite2-City database"), .timeLimit(.minutes(2)))
    func damagedGeoReload() throws {
        let real = try #require(GeoLite2.path)
        let setup = try GSLBSetup()
        defer { setup.remove() }
        let db = try setup.copyDatabase(real)
        let server = try setup.start(timeout: 30)
        defer { server.stop() }
        // 2.16.0.0/13 is in Europe in GeoLite2.
        let before = try server.dig("www.example.com", "A", "+subnet=2.16.0.0/24").addresses
        #expect(before.allSatisfy { GSLBTests.region($0) == "eu" } && !before.isEmpty, "\(before)")
        // The file the server opened, overwritten in place (cp over it, truncate): the server reads
        // its own copy, never the file (a mapped file cut short was SIGBUS at the next explain).
        _ = try Command.run("/usr/bin/truncate", ["-s", "100000", db])
        let explain = try setup.admin("GET", "/v1/explain?name=www.example.com&client=81.2.69.160")
        #expect(explain.contains("\"answer\""), "\(explain.prefix(300))")
        usleep(300_000)
        #expect(server.process.isRunning, "\(server.log().suffix(500))")
        let whole = try Data(contentsOf: URL(fileURLWithPath: real))
        try (whole.prefix(whole.count / 2) + whole).write(to: URL(fileURLWithPath: db + ".new"))
        _ = rename(db + ".new", db)
        server.signal(SIGHUP)
        #expect(ReloadTests.waitFor(30) { server.log().contains("reload failed") }, "\(server.log().suffix(600))")
        #expect(server.log().contains(db), "the refusal names the file")
        #expect(server.process.isRunning)
        // Still the European answers.
        let after = try server.dig("www.example.com", "A", "+subnet=2.16.0.0/24").addresses
        #expect(!after.isEmpty && after.allSatisfy { GSLBTests.region($0) == "eu" }, "\(after)")
    }

    // MARK: config files

    @Test(
        "Config: nested 5,000 deep, duplicate keys, non-canonical numbers, a bad cookie secret, empty: refused with file:line",
        .timeLimit(.minutes(1)))
    func badConfigs() throws {
        let dir = try Paths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let deepBlock =
            (0..<5000).map { String(repeating: " ", count: $0) + "k\($0):" }.joined(separator: "\n") + " 1\n"
        let cases: [(String, String, String)] = [
            (
                "flow", "server: " + String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000) + "\n",
                ":1: YAML nested"
            ),
            ("block", deepBlock, "YAML nested"),
            ("dup", "server:\n  udp-workers: 2\nserver:\n  udp-workers: 3\n", ":3: server given twice"),
            ("hex", "server:\n  udp-workers: 0x10\n", ":2: udp-workers must be a whole number"),
            ("plus", "server:\n  tcp-idle-timeout: +5\n", ":2: tcp-idle-timeout must be a number"),
            ("cookie", "cookies:\n  secret: +1+2+3+4+5+6+7+8+9+a+b+c+d+e+f+0\n", ":2: cookies secret"),
            ("empty", "", "config file is empty"),
            ("comments", "# only a comment\n", "config file is empty")
        ]
        for (name, text, expected) in cases {
            let path = dir + "/\(name).yaml"
            try Self.write(text, path)
            let r = try Self.check(["--config", path, "--zones", Paths.packageRoot + "/zones"])
            #expect(
                r.status == 1 && r.error.contains(path) && r.error.contains(expected), "\(name): \(r.error.prefix(300))"
            )
        }
    }

    @Test(
        "Reload: an empty config or one without names is refused (the names stay), --force applies it; a deep one does not kill",
        .timeLimit(.minutes(1)))
    func reloadRefusesEmptying() throws {
        let setup = try GSLBSetup()
        defer { setup.remove() }
        let server = try setup.start()
        defer { server.stop() }
        let original = try String(contentsOfFile: setup.config, encoding: .utf8)
        #expect(try !server.dig("www.example.com", "A").addresses.isEmpty)
        for broken in ["", "server: " + String(repeating: "{a: ", count: 5000) + "\n"] {
            try Self.write(broken, setup.config)
            let r = try setup.admin("POST", "/v1/reload")
            #expect(r.contains("failed"), "\(r)")
            #expect(server.process.isRunning)
        }
        // Only the admin section left: every load-balanced name would go.
        let adminOnly = original.components(separatedBy: "\n").drop { !$0.hasPrefix("admin:") }.joined(separator: "\n")
        try Self.write("server:\n  zones: zones\n" + adminOnly, setup.config)
        let refused = try setup.admin("POST", "/v1/reload")
        #expect(refused.contains("no load-balanced names") && refused.contains("--force"), "\(refused)")
        #expect(try !server.dig("www.example.com", "A").addresses.isEmpty, "still steered")
        let forced = try setup.admin("POST", "/v1/reload?force=true")
        #expect(forced.contains("reloaded"), "\(forced)")
        // The zone's own records of last resort answer now.
        #expect(try server.dig("www.example.com", "A").addresses == ["192.0.2.10"])
        #expect(server.log().contains("no load-balanced names"), "the refusal is logged")
    }

    // MARK: zone files

    @Test(
        "Zones: $INCLUDE fan-out, a 300 KB line and a file past zone-file-size are refused in bounded time with file:line",
        .timeLimit(.minutes(1)))
    func zoneLimits() throws {
        let dir = try Paths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let zones = dir + "/zones"
        try FileManager.default.createDirectory(atPath: zones, withIntermediateDirectories: true)
        let head = "$TTL 300\n@ SOA ns1 host 1 2 3 4 5\n@ NS ns1\nns1 A 192.0.2.1\n"
        // Ten includes of itself per file: 10^8 reads at 8 levels without a bound on the total.
        try Self.write(head + String(repeating: "$INCLUDE fan.inc\n", count: 10), zones + "/fan.test.zone")
        try Self.write("x A 192.0.2.2\n" + String(repeating: "$INCLUDE fan.inc\n", count: 10), zones + "/fan.inc")
        try Self.write(head + "t TXT \"" + String(repeating: "a", count: 300_000) + "\"\n", zones + "/long.test.zone")
        try Self.write(
            head + String(repeating: "; padding to pass the limit set below\n", count: 30_000), zones + "/big.test.zone"
        )
        try Self.write("limits:\n  zone-file-size: 1000000\n", dir + "/c.yaml")
        // A TXT of 300 strings of 255 octets (77 KB of text): libldns kept 255 of them, silently.
        try Self.write(
            head + "t TXT "
                + Array(repeating: "\"" + String(repeating: "a", count: 255) + "\"", count: 300).joined(separator: " ")
                + "\n",
            zones + "/txt.test.zone")
        // A FIFO as a zone file (its open would block), a device as an include (read for ever).
        #expect(mkfifo(zones + "/fifo.test.zone", 0o644) == 0)
        try Self.write(head + "$INCLUDE /dev/zero\n", zones + "/dev.test.zone")
        let t0 = Date()
        let r = try Self.check(["--config", dir + "/c.yaml", "--zones", zones])
        #expect(Date().timeIntervalSince(t0) < 20, "bounded")
        #expect(r.status == 1)
        #expect(r.error.contains("limits.zone-includes"), "\(r.error.prefix(600))")
        #expect(r.error.contains(zones + "/long.test.zone:5: a line of"), "\(r.error.prefix(600))")
        #expect(r.error.contains(zones + "/big.test.zone:0: file of"), "\(r.error.prefix(600))")
        #expect(r.error.contains(zones + "/fifo.test.zone:0: not a regular file"), "\(r.error.prefix(600))")
        #expect(r.error.contains(zones + "/txt.test.zone:5: a record of"), "\(r.error.prefix(900))")
        #expect(r.error.contains("/dev/zero:0: not a regular file"), "\(r.error.prefix(600))")
    }

    // MARK: etcd and the admin API as lying peers

    @Test(
        "A lying etcd (Content-Length -1, revisions of 2^63-1, a bad watch) does not kill the server",
        .enabled(if: FileManager.default.fileExists(atPath: "/usr/bin/python3")), .timeLimit(.minutes(2)))
    func lyingEtcd() throws {
        for mode in ["neglen", "bigrev", "watchrev", "garbage"] {
            let (fake, port) = try Self.liar(mode, seconds: 30)
            defer { Self.stop(fake) }
            let setup = try GSLBSetup(editConfig: Self.cluster(on: port))
            defer { setup.remove() }
            let server = try setup.start()
            defer { server.stop() }
            // A few rounds of reads, watches and keepalives against the liar.
            Thread.sleep(forTimeInterval: 4)
            #expect(server.process.isRunning, "\(mode): \(server.log().suffix(800))")
            #expect(try server.dig("www.example.com", "A").status == "NOERROR", "\(mode)")
            if mode == "neglen" {
                #expect(
                    server.log().contains("bad Content-Length"), "the peer's error is said: \(server.log().suffix(800))"
                )
            }
        }
    }

    @Test(
        "An etcd whose watch stalls, whose range never advances, or whose every watch fails at once: restarted, refused, backed off",
        .enabled(if: FileManager.default.fileExists(atPath: "/usr/bin/python3")), .timeLimit(.minutes(2)))
    func stallingEtcd() throws {
        for mode in ["dripwatch", "rangeloop", "watcherr"] {
            let dir = try Paths.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let countsFile = dir + "/counts.json"
            let (fake, port) = try Self.liar(mode, seconds: 40, counts: countsFile)
            defer { Self.stop(fake) }
            let setup = try GSLBSetup(editConfig: Self.cluster(on: port))
            defer { setup.remove() }
            let server = try setup.start()
            defer { server.stop() }
            Thread.sleep(forTimeInterval: 7)
            #expect(server.process.isRunning, "\(mode): \(server.log().suffix(800))")
            #expect(try server.dig("www.example.com", "A").status == "NOERROR", "\(mode)")
            let counts =
                (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: countsFile))))
                as? [String: Int] ?? [:]
            switch mode {
            case "dripwatch":
                // Heartbeats written, none coming back through the dripping watch: it is restarted.
                #expect(server.log().contains("a stalled stream); starting it again"), "\(server.log().suffix(1200))")
                #expect((counts["/v3/watch"] ?? 0) >= 2, "the watch was started again: \(counts)")
            case "rangeloop":
                #expect(server.log().contains("does not advance"), "\(server.log().suffix(1200))")
                // Refused at the second page and retried with back-off: a few reads, not thousands.
                #expect((counts["/v3/kv/range"] ?? 0) < 60, "\(counts)")
            default:
                // A watch that fails as it starts is retried after 0.2, 0.4, 0.8, … s, not at once.
                #expect((counts["/v3/watch"] ?? 0) <= 12, "\(counts)")
                #expect(server.log().contains("boom"), "\(server.log().suffix(1200))")
            }
        }
    }

    @Test(
        "lodestar ctl against an admin port that answers Content-Length -1: an error, not a trap",
        .timeLimit(.minutes(1)))
    func ctlBadAdmin() throws {
        let (fake, port) = try Self.liar("neglen", seconds: 20)
        defer { Self.stop(fake) }
        let r = try Command.run(Paths.binary, ["ctl", "status", "--admin", "127.0.0.1:\(port)", "--timeout", "3"])
        #expect(r.status == 1 || r.status == 2, "exit \(r.status): \(r.error)")
        #expect(r.error.contains("Content-Length"), "\(r.error)")
    }

    @Test(
        "Admin: no change over TCP without a token (403); the control socket takes it; another user cannot open the socket",
        .timeLimit(.minutes(1)))
    func adminChangesNeedSocketOrToken() throws {
        let setup = try GSLBSetup()
        defer { setup.remove() }
        let server = try setup.start()
        defer { server.stop() }
        let tcp = try Command.run(
            "/usr/bin/curl",
            [
                "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", "-X", "POST",
                "-H", "Content-Type: application/json", "-d", #"{"state":"drain"}"#,
                "http://127.0.0.1:\(setup.adminPort)/v1/regions/eu-central"
            ]
        ).output
        #expect(tcp == "403", "a local account cannot drain a region over TCP")
        #expect(
            GSLBTests.region(try server.dig("www.example.com", "A", "+subnet=198.51.100.0/24").addresses.first ?? "")
                == "eu")
        let sock = setup.dir + "/.lodestar.sock"
        var st = stat()
        #expect(stat(sock, &st) == 0 && st.st_mode & 0o777 == 0o660, "mode \(String(st.st_mode & 0o777, radix: 8))")
        if getuid() == 0 {
            // Not the server's user, not its group: the socket's mode keeps it out.
            let other = try Command.run(
                "/usr/bin/setpriv",
                [
                    "--reuid", "12345", "--regid", "12345", "--clear-groups", Paths.binary,
                    "ctl", "drain", "eu-central", "--socket", sock
                ])
            #expect(other.status == 1 && other.error.contains("permission denied"), "\(other.error)")
        }
        let ctl = try Command.run(Paths.binary, ["ctl", "drain", "eu-central", "--socket", sock])
        #expect(ctl.status == 0, "\(ctl.error)")
        #expect(
            GSLBTests.region(try server.dig("www.example.com", "A", "+subnet=198.51.100.0/24").addresses.first ?? "")
                != "eu")
        // A reason with control characters (a NUL, a terminal escape) is logged escaped.
        _ = try setup.admin(
            "POST", "/v1/health/na-1", #"{"state": "down", "reason": "a\nb\u0000c\u001b[31mred", "ttl": 5}"#)
        #expect(ReloadTests.waitFor(3) { server.log().contains("\\u001b[31mred") }, "\(server.log().suffix(400))")
        let raw = (try? Data(contentsOf: URL(fileURLWithPath: server.logPath))) ?? Data()
        #expect(!raw.contains(0) && !raw.contains(0x1B), "no raw NUL or ESC in the log")
        // A second server on the same socket path is refused: the socket is live.
        let copy = try String(contentsOfFile: setup.config, encoding: .utf8)
            .replacingOccurrences(of: "127.0.0.1:\(setup.adminPort)", with: "127.0.0.1:\(FreePort.pick())")
        try Self.write(copy, setup.dir + "/second.yaml")
        let second = try Command.run(
            Paths.binary, ["serve", "--config", setup.dir + "/second.yaml", "--listen", "127.0.0.1:\(FreePort.pick())"],
            timeout: 10)
        #expect(
            second.status == 2 && second.error.contains("another lodestar answers on it"), "\(second.error.suffix(300))"
        )
    }

    @Test(
        "Admin: 64 idle connections and 8 more from one client do not shut out /health, /ready and /metrics",
        .timeLimit(.minutes(1)))
    func adminSlots() throws {
        let setup = try GSLBSetup()
        defer { setup.remove() }
        let server = try setup.start()
        defer { server.stop() }
        // 72 idle connections from 9 loopback addresses (8 each: the per-client cap), held open.
        let r = try Command.run(
            "/usr/bin/python3",
            [
                "-c",
                """
                import socket, subprocess
                held = []
                for a in range(2, 11):
                    for i in range(8):
                        try:
                            s = socket.socket(); s.bind(("127.0.0.%d" % a, 0)); s.settimeout(2)
                            s.connect(("127.0.0.1", \(setup.adminPort))); held.append(s)
                        except OSError:
                            pass
                # A ninth connection from one address: closed at once (per-client cap).
                s = socket.socket(); s.bind(("127.0.0.2", 0)); s.settimeout(2); s.connect(("127.0.0.1", \(setup.adminPort)))
                try:
                    capped = s.recv(1) == b""
                except OSError:
                    capped = True
                ok = 0
                for path in ["/health", "/ready", "/metrics"] * 3:
                    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "3",
                                          "http://127.0.0.1:\(setup.adminPort)" + path], capture_output=True, text=True).stdout
                    ok += out == "200"
                print("held", len(held), "capped", capped, "ok", ok)
                """
            ], timeout: 40)
        #expect(r.output.contains("capped True"), "\(r.output) \(r.error)")
        #expect(r.output.contains("ok 9"), "\(r.output) \(r.error)")
        #expect(server.process.isRunning)
    }

    @Test(
        "Admin: clients pipelining thousands of /metrics without reading are closed; /health answers meanwhile; memory stays bounded",
        .timeLimit(.minutes(1)))
    func adminPipelining() throws {
        let setup = try GSLBSetup()
        defer { setup.remove() }
        let server = try setup.start()
        defer { server.stop() }
        func rssKiB() -> Int {
            let st = PrivilegeTests.status(server.pid)
            return Int((st["VmRSS"] ?? "0").split(separator: " ").first ?? "0") ?? 0
        }
        let before = rssKiB()
        let r = try Command.run(
            "/usr/bin/python3",
            [
                "-c",
                """
                import socket, subprocess, time
                held = []
                for a in range(2, 10):
                    s = socket.socket(); s.bind(("127.0.3.%d" % a, 0)); s.settimeout(5)
                    s.connect(("127.0.0.1", \(setup.adminPort)))
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                    try:
                        s.sendall(b"GET /metrics HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\n\\r\\n" * 2000)
                    except OSError:
                        pass
                    held.append(s)
                slow = 0
                for i in range(10):
                    t0 = time.monotonic()
                    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2",
                                          "http://127.0.0.1:\(setup.adminPort)/health"], capture_output=True, text=True).stdout
                    if out != "200" or time.monotonic() - t0 > 1: slow += 1
                    time.sleep(0.2)
                print("slow", slow)
                """
            ], timeout: 50)
        #expect(r.output.contains("slow 0"), "\(r.output) \(r.error)")
        let grown = rssKiB() - before
        #expect(grown < 100_000, "RSS grew \(grown) KiB")
        #expect(server.process.isRunning)
    }

    // MARK: TCP pipelining

    @Test(
        "20,000 pipelined queries from a client that reads slowly are all answered (no reset)",
        .enabled(if: FileManager.default.fileExists(atPath: "/usr/bin/python3")), .timeLimit(.minutes(2)))
    func pipelinedSlowReader() throws {
        let server = try LodestarProcess()
        defer { server.stop() }
        let r = try Command.run(
            "/usr/bin/python3", [Paths.packageRoot + "/Tests/Abuse/pipeline_slow.py", "\(server.port)", "20000"],
            timeout: 90)
        #expect(r.output.contains("answered 20000"), "\(r.output) \(r.error)")
        #expect(server.process.isRunning)
    }

    // MARK: logs

    @Test(
        "PROXY drops are logged with the peer and reason, at most a line every 10 s a reason", .timeLimit(.minutes(1)))
    func proxyDropsLogged() throws {
        let dir = try Paths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.write(
            "server:\n  zones: \(Paths.packageRoot)/zones\nproxy-protocol:\n  allow: [\"192.0.2.1/32\"]\n",
            dir + "/c.yaml")
        let server = try LodestarProcess(zones: Paths.packageRoot + "/zones", config: dir + "/c.yaml")
        defer { server.stop() }
        // PROXY v2 headers from 127.0.0.1, which is not allowed to send them: 50 dropped datagrams.
        var header: [UInt8] = [
            0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A, 0x21, 0x11, 0x00, 0x0C
        ]
        header += [198, 51, 100, 7, 127, 0, 0, 1, 0x30, 0x39, 0x00, 0x35]
        for i in 0..<50 {
            _ = RawDNS.udp(
                header + RawDNS.query(id: UInt16(i), name: "example.com", type: 6), port: server.port, timeout: 0.01)
        }
        #expect(
            ReloadTests.waitFor(3) { server.log().contains("PROXY: UDP datagram from 127.0.0.1 dropped") },
            "\(server.log())")
        let lines = server.log().components(separatedBy: "\n").filter { $0.contains("PROXY: UDP datagram") }
        #expect(lines.count == 1, "rate-limited: \(lines)")
    }
}
