import Foundation
import OriginSupport

/// A real BIRD 2 daemon (`bird -f`) with its own config and control socket, stopped by pid.
final class BirdProcess: @unchecked Sendable {
    let name: String
    let dir: String
    let config: String
    let socket: String
    let logPath: String
    var process: Process? = nil

    init(name: String, dir: String, config text: String) throws {
        self.name = name
        self.dir = dir
        config = dir + "/\(name).conf"
        socket = dir + "/\(name).ctl"
        logPath = dir + "/\(name).log"
        try text.write(toFile: config, atomically: true, encoding: .utf8)
        let check = try Command.run("/usr/sbin/bird", ["-p", "-c", config], timeout: 10)
        guard check.status == 0 else { throw TestFailure("bird -p \(config): \(check.output)\(check.error)") }
        try start()
    }

    /// Starts the daemon and waits (at most 5 s) for its control socket's greeting.
    func start() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/sbin/bird")
        p.arguments = ["-f", "-c", config, "-s", socket, "-P", dir + "/\(name).pid"]
        if !FileManager.default.fileExists(atPath: logPath) {
            FileManager.default.createFile(atPath: logPath, contents: nil)
        }
        let log = FileHandle(forWritingAtPath: logPath)
        log?.seekToEndOfFile()
        p.standardOutput = log
        p.standardError = log
        try p.run()
        process = p
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline {
            if !p.isRunning { throw TestFailure("bird \(name) exited: \(self.log())") }
            if let r = try? birdc("show status"), r.contains("Daemon is up and running") {
                // As Debian's is 0660 bird:bird with lodestar in group bird: lodestar runs as
                // nobody:nogroup here (LodestarProcess).
                if getuid() == 0 {
                    chown(socket, 0, 65534)
                    chmod(socket, 0o660)
                }
                return
            }
            usleep(20_000)
        }
        throw TestFailure("bird \(name) did not open \(socket): \(self.log())")
    }

    func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// A command through birdc on this daemon's socket; its output.
    @discardableResult
    func birdc(_ command: String) throws -> String {
        try Command.run("/usr/sbin/birdc", ["-s", socket] + command.split(separator: " ").map(String.init), timeout: 5)
            .output
    }

    /// Whether the daemon's table holds `prefix` (exact network).
    func has(_ prefix: String) -> Bool {
        ((try? birdc("show route \(prefix)")) ?? "").split(separator: "\n").contains { $0.hasPrefix(prefix + " ") }
    }

    /// Seconds until `has(prefix) == want` (polling every 10 ms), nil after `limit`.
    func wait(_ prefix: String, present want: Bool, limit: Double) -> Double? {
        Poll.seconds(limit: limit) { has(prefix) == want }
    }

    /// Waits (bounded) until BGP protocol `proto` is Established.
    func waitEstablished(_ proto: String, limit: Double = 15) -> Bool {
        Poll.seconds(limit: limit, every: 0.05) {
            ((try? birdc("show protocols all \(proto)")) ?? "").contains("BGP state:          Established")
        } != nil
    }

    /// What to print when a session does not come up: the protocols and the log's tail.
    func diagnose() -> String {
        "\(name): \((try? birdc("show protocols all")) ?? "no answer on \(socket)")\n\(name).log: \(log().suffix(3000))"
    }

    /// SIGTERM, then SIGKILL after 5 s (a hung BIRD ignores SIGTERM); waits for the exit.
    func stop() {
        guard let p = process, p.isRunning else { return }
        kill(p.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(5)
        while p.isRunning && Date() < deadline { usleep(10_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
    }

    deinit { stop() }
}

/// The two-BIRD loopback topology (../shared/research/bird-control-socket.md §4): A (this POP)
/// holds the anycast static protocols and a BGP session to B, which plays the upstream; C, when
/// started, plays another POP announcing the same service prefix to A. Every session has `strict
/// bind on`: each daemon listens on its own address only, so a TIME_WAIT that another daemon's
/// session left on the same port number (another address) cannot make its listening socket fail
/// ("No listening socket": the session would never come up).
struct BirdTopology {
    let dir: String
    let a: BirdProcess
    let b: BirdProcess
    let portsA: (toB: Int, fromC: Int)
    let portB: Int
    let portC: Int
    static let service = "198.51.100.53/32"
    static let other = "198.51.100.54/32"

    init() throws {
        // A short path: unix socket paths are limited to 107 bytes.
        dir = "/tmp/ls-bird-" + String(UUID().uuidString.prefix(8))
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        // lodestar runs as nobody (LodestarProcess): it writes the include file here.
        if getuid() == 0 { chown(dir, 65534, 65534) }
        portsA = (FreePort.pick(), FreePort.pick())
        portB = FreePort.pick()
        portC = FreePort.pick()
        // The mirror lodestar keeps; it must exist before A starts (BIRD includes it).
        try "define LODESTAR_SVC_DNS4_DOWN = 1;\ndefine LODESTAR_SVC_DNS4_DRAIN = 0;\n"
            .write(toFile: dir + "/lodestar-anycast.conf", atomically: true, encoding: .utf8)
        b = try BirdProcess(
            name: "b", dir: dir,
            config: """
                log stderr all;
                debug protocols { states, events };
                router id 192.0.2.2;
                protocol bgp from_a {
                  local 127.0.0.3 port \(portB) as 65002;
                  neighbor 127.0.0.2 port \(portsA.toB) as 65001;
                  strict bind on; multihop 2; passive on; error wait time 1, 5;
                  ipv4 { import filter { if (65535, 0) ~ bgp_community then bgp_local_pref = 0; accept; }; export none; };
                }
                """)
        a = try BirdProcess(
            name: "a", dir: dir,
            config: """
                log stderr all;
                debug protocols { states, events };
                router id 192.0.2.1;
                include "\(dir)/lodestar-anycast.conf";
                protocol static svc_dns4 { disabled LODESTAR_SVC_DNS4_DOWN; ipv4; route \(Self.service) blackhole; }
                protocol static svc_other4 { ipv4; route \(Self.other) blackhole; }
                filter export_to_b {
                  if proto = "svc_dns4" && LODESTAR_SVC_DNS4_DRAIN = 1 then bgp_community.add((65535, 0));
                  if proto ~ "svc_*" then accept;
                  reject;
                }
                protocol bgp to_b {
                  local 127.0.0.2 port \(portsA.toB) as 65001;
                  neighbor 127.0.0.3 port \(portB) as 65002;
                  strict bind on; multihop 2; connect delay time 1; connect retry time 2; error wait time 1, 5;
                  ipv4 { import none; export filter export_to_b; };
                }
                protocol bgp from_c {
                  local 127.0.0.2 port \(portsA.fromC) as 65001;
                  neighbor 127.0.0.4 port \(portC) as 65003;
                  strict bind on; multihop 2; passive on; error wait time 1, 5;
                  ipv4 { import all; export none; };
                }
                """)
    }

    /// Another POP announcing the service prefix to A.
    func startC() throws -> BirdProcess {
        try BirdProcess(
            name: "c", dir: dir,
            config: """
                log stderr all;
                debug protocols { states, events };
                router id 192.0.2.3;
                protocol static pop_c { ipv4; route \(Self.service) blackhole; }
                protocol bgp to_a {
                  local 127.0.0.4 port \(portC) as 65003;
                  neighbor 127.0.0.2 port \(portsA.fromC) as 65001;
                  strict bind on; multihop 2; connect delay time 1; connect retry time 2; error wait time 1, 5;
                  ipv4 { import none; export where proto = "pop_c"; };
                }
                """)
    }

    /// lodestar's `anycast:` section for this topology.
    func anycastConfig(minOtherPaths: Int = 0, extra: String = "") -> String {
        """
        anycast:
          socket: \(dir)/a.ctl
          include-file: \(dir)/lodestar-anycast.conf
          self-check: { query: www.example.com, interval: 0.5, timeout: 0.3, rise: 2, fall: 3 }
          shutdown-delay: 1
          reassert: 2
        \(extra)
          prefixes:
            - { prefix: \(Self.service), protocol: svc_dns4, min-other-paths: \(minOtherPaths), export-protocol: to_b }

        """
    }

    func stop() {
        a.stop()
        b.stop()
        try? FileManager.default.removeItem(atPath: dir)
    }
}
