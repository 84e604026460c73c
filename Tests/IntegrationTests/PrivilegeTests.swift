import Foundation
import OriginSupport
import Testing

/// Least privilege for real: started as root in a network namespace of the test's own, serving on
/// port 53, the process runs as nobody:nogroup with no capability, and reload, the prober, the
/// state file and BIRD (its socket in group nogroup, as Debian's is in group bird) still work.
@Suite("Least privilege", .serialized, .enabled(if: getuid() == 0, "needs root: ip netns, port 53, setuid"))
struct PrivilegeTests {
    /// `command` inside the namespace.
    static func inNS(_ ns: String, _ command: [String], timeout: Double = 10) throws -> Command.Result {
        try Command.run("/usr/bin/env", ["ip", "netns", "exec", ns] + command, timeout: timeout)
    }

    /// A long-running process inside the namespace, stopped by pid.
    static func spawn(_ ns: String, _ command: [String], log: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["ip", "netns", "exec", ns] + command
        FileManager.default.createFile(atPath: log, contents: nil)
        let h = FileHandle(forWritingAtPath: log)
        p.standardOutput = h
        p.standardError = h
        try p.run()
        return p
    }

    static func stop(_ p: Process) {
        guard p.isRunning else { return }
        kill(p.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(8)
        while p.isRunning && Date() < deadline { usleep(20_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
    }

    /// The fields of /proc/PID/status.
    static func status(_ pid: Int32) -> [String: String] {
        let text = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        var out: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let kv = line.split(separator: ":", maxSplits: 1)
            if kv.count == 2 { out[String(kv[0])] = kv[1].trimmingCharacters(in: .whitespaces) }
        }
        return out
    }

    @Test(
        "root in a namespace, port 53, then nobody:nogroup with CapEff 0; reload, prober, state file and BIRD work",
        .timeLimit(.minutes(2)))
    func dropsPrivileges() throws {
        let ns = "ls-priv-\(UUID().uuidString.prefix(6))"
        _ = try Command.run("/usr/bin/env", ["ip", "netns", "add", ns])
        defer { _ = try? Command.run("/usr/bin/env", ["ip", "netns", "del", ns]) }
        _ = try Command.run("/usr/bin/env", ["ip", "-n", ns, "link", "set", "lo", "up"])
        // A short path: BIRD's socket path must fit in sun_path.
        let dir = "/tmp/ls-priv-" + String(UUID().uuidString.prefix(8))
        try FileManager.default.createDirectory(atPath: dir + "/zones", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/state", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/www", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        chmod(dir, 0o755)
        _ = try Command.run("/bin/chown", ["nobody:nogroup", dir + "/state"])
        let zone = try String(contentsOfFile: Paths.packageRoot + "/zones/example.com.zone", encoding: .utf8)
        try zone.write(toFile: dir + "/zones/example.com.zone", atomically: true, encoding: .utf8)
        try "ok".write(toFile: dir + "/www/health", atomically: true, encoding: .utf8)
        // The origin, inside the namespace.
        let origin = try Self.spawn(
            ns, ["python3", "-m", "http.server", "8080", "--bind", "127.0.0.11", "--directory", dir + "/www"],
            log: dir + "/origin.log")
        defer { Self.stop(origin) }
        // BIRD, inside the namespace; its socket's group is the one lodestar runs as.
        try "define LODESTAR_SVC_DNS4_DOWN = 1;\ndefine LODESTAR_SVC_DNS4_DRAIN = 0;\n"
            .write(toFile: dir + "/state/anycast.conf", atomically: true, encoding: .utf8)
        _ = try Command.run("/bin/chown", ["nobody:nogroup", dir + "/state/anycast.conf"])
        try """
        log stderr all;
        router id 192.0.2.1;
        include "\(dir)/state/anycast.conf";
        protocol device {}
        protocol static svc_dns4 { disabled LODESTAR_SVC_DNS4_DOWN; ipv4; route 198.51.100.53/32 blackhole; }
        """.write(toFile: dir + "/bird.conf", atomically: true, encoding: .utf8)
        let bird = try Self.spawn(
            ns, ["/usr/sbin/bird", "-f", "-c", dir + "/bird.conf", "-s", dir + "/bird.ctl", "-P", dir + "/bird.pid"],
            log: dir + "/bird.log")
        defer { Self.stop(bird) }
        #expect(
            Poll.seconds(limit: 5, every: 0.05) { FileManager.default.fileExists(atPath: dir + "/bird.ctl") } != nil)
        _ = try Command.run("/bin/chgrp", ["nogroup", dir + "/bird.ctl"])
        chmod(dir + "/bird.ctl", 0o660)
        try """
        server:
          listen: ["127.0.0.1:53"]
          zones: zones
          user: nobody
          group: nogroup
        regions:
          us-east: {}
        checks:
          web: { type: http, port: 8080, path: /health, expect-body: ok, interval: 1, timeout: 0.5, rise: 1, fall: 1, damping: false }
        pools:
          na:
            region: us-east
            check: web
            endpoints:
              - { name: na-1, address: 192.0.2.11, probe: 127.0.0.11 }
        names:
          www.example.com: { policy: [health, failover], pools: [na], ttl: 10, all-down: servfail }
        admin:
          listen: 127.0.0.1:5380
          state-file: \(dir)/state/state.json
        anycast:
          socket: \(dir)/bird.ctl
          include-file: \(dir)/state/anycast.conf
          self-check: { query: example.com, interval: 0.5, timeout: 0.3, rise: 1, fall: 2 }
          shutdown-delay: 0.5
          prefixes:
            - { prefix: 198.51.100.53/32, protocol: svc_dns4 }
        rate-limit:
          responses-per-second: 0
        """.write(toFile: dir + "/lodestar.yaml", atomically: true, encoding: .utf8)
        let server = try Self.spawn(
            ns, [Paths.binary, "serve", "--config", dir + "/lodestar.yaml"], log: dir + "/lodestar.log")
        defer { Self.stop(server) }
        func log() -> String { (try? String(contentsOfFile: dir + "/lodestar.log", encoding: .utf8)) ?? "" }
        func dig(_ args: String...) throws -> DigResult {
            DigResult(
                try Self.inNS(ns, ["dig", "@127.0.0.1", "-p", "53", "+norec", "+tries=1", "+time=1"] + args).output)
        }
        func admin(_ method: String, _ path: String, _ body: String? = nil) throws -> String {
            var args = ["curl", "-s", "-X", method, "http://127.0.0.1:5380\(path)", "--max-time", "5"]
            if let body { args += ["-H", "Content-Type: application/json", "-d", body] }
            return try Self.inNS(ns, args).output
        }
        let up = try Poll.seconds(limit: 15, every: 0.1) { try dig("example.com", "SOA").status == "NOERROR" }
        #expect(up != nil, "serves on port 53: \(log())")
        // Who it runs as.
        let st = Self.status(server.processIdentifier)
        #expect(st["Uid"]?.split(separator: "\t").allSatisfy { $0 == "65534" } == true, "Uid \(st["Uid"] ?? "?")")
        #expect(st["Gid"]?.split(separator: "\t").allSatisfy { $0 == "65534" } == true, "Gid \(st["Gid"] ?? "?")")
        #expect(
            st["CapEff"] == "0000000000000000" && st["CapPrm"] == "0000000000000000"
                && st["CapAmb"] == "0000000000000000",
            "capabilities: \(st.filter { $0.key.hasPrefix("Cap") })")
        #expect(
            st["Groups"]?.split(separator: " ").allSatisfy { $0 == "65534" } ?? true, "groups: \(st["Groups"] ?? "")")
        // The prober: the origin up, then stopped → the name goes SERVFAIL (all down).
        let probed = try Poll.seconds(limit: 10, every: 0.1) {
            try dig("www.example.com", "A").addresses == ["192.0.2.11"]
        }
        #expect(probed != nil, "the origin checked up: \(log())")
        // BIRD: connected through the group-owned socket, the prefix announced.
        let connected = try Poll.seconds(limit: 10, every: 0.1) {
            try admin("GET", "/v1/anycast").contains("\"connected\" : true")
        }
        let anycast = try admin("GET", "/v1/anycast")
        #expect(connected != nil, "BIRD reachable as nobody: \(anycast)")
        // The state file, written as nobody.
        _ = try admin("POST", "/v1/endpoints/na-1", #"{"weight": 5}"#)
        let saved = Poll.seconds(limit: 5, every: 0.05) {
            FileManager.default.fileExists(atPath: dir + "/state/state.json")
        }
        #expect(saved != nil, "state file written: \(log())")
        var fst = stat()
        stat(dir + "/state/state.json", &fst)
        #expect(fst.st_uid == 65534, "owned by nobody")
        // Reload: a new serial is served.
        try zone.replacingOccurrences(of: "2026112301", with: "2026112302").write(
            toFile: dir + "/zones/example.com.zone", atomically: true, encoding: .utf8)
        kill(server.processIdentifier, SIGHUP)
        let reloaded = try Poll.seconds(limit: 10, every: 0.1) {
            try dig("example.com", "SOA").answer.first?.contains("2026112302") == true
        }
        #expect(reloaded != nil, "reload as nobody: \(log())")
        Self.stop(origin)
        let down = try Poll.seconds(limit: 10, every: 0.1) { try dig("www.example.com", "A").status == "SERVFAIL" }
        #expect(down != nil, "the prober still probes: \(log())")
        #expect(!log().contains("error"), "\(log())")
    }

    @Test(
        "a state folder the user cannot write, or a user that does not exist: a clear error, exit 2, nothing bound",
        .timeLimit(.minutes(1)))
    func refusesWhatItCannotDo() throws {
        let dir = try Paths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        chmod(dir, 0o755)
        try FileManager.default.createDirectory(atPath: dir + "/root-only", withIntermediateDirectories: true)
        chmod(dir + "/root-only", 0o700)
        let port = FreePort.pick()
        try """
        server:
          listen: ["127.0.0.1:\(port)"]
          zones: \(Paths.packageRoot)/zones
          user: nobody
        admin:
          state-file: \(dir)/root-only/state.json
        """.write(toFile: dir + "/l.yaml", atomically: true, encoding: .utf8)
        let r = try Command.run(Paths.binary, ["serve", "--config", dir + "/l.yaml"], timeout: 15)
        #expect(r.status == 2, "\(r)")
        #expect(
            r.error.contains("\(dir)/root-only: the state file's folder is not writable by uid 65534"), "\(r.error)")
    }
}
