import Foundation
import OriginSupport

/// The real `lodestar serve` binary on a free loopback port, stopped by pid when done.
///
/// Run as it is deployed: when the tests run as root (CI), the server runs as nobody:nogroup with
/// no capability at all (`setpriv`), as the unit leaves it once its port is bound, unless a test
/// asks for root (`asRoot`) for a reason it states. A behaviour tested only as root is untested:
/// TCP was dead for every unprivileged server while the suite, as root, passed.
final class LodestarProcess: @unchecked Sendable {
    /// How `setpriv` drops everything: user nobody, group nogroup, no supplementary groups, no
    /// capability in any set, no way back.
    static let unprivileged = [
        "/usr/bin/setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups",
        "--inh-caps", "-all", "--bounding-set", "-all", "--no-new-privs"
    ]

    /// Whether servers of this run drop to nobody (the tests run as root and setpriv exists).
    static var dropsPrivileges: Bool {
        getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv")
    }

    let port: Int
    let process: Process
    let logPath: String
    let workDir: String

    /// Starts the server and waits (at most 15 s) until it answers over UDP and TCP.
    /// Response rate limiting is off unless `rateLimit`: the tests send hundreds of queries a
    /// second from 127.0.0.1 (RateLimitTests test limiting itself).
    init(
        zones: String = Paths.fixtures + "/zones", config: String? = nil, extra: [String] = [],
        startupTimeout: Double = 15, rateLimit: Bool = false, launcher: [String] = [],
        environment: [String: String] = [:], asRoot: Bool = false
    ) throws {
        port = FreePort.pick()
        workDir = try Paths.temporaryDirectory()
        logPath = workDir + "/lodestar.log"
        FileManager.default.createFile(atPath: logPath, contents: nil)
        process = Process()
        // `launcher`: a command that runs the binary (prlimit with its options, for limits).
        let drop = !asRoot && Self.dropsPrivileges
        let launcher = (drop ? Self.unprivileged : []) + launcher
        // The config's folder is where a test's server writes (its state file, its control
        // socket): nobody's, as /var/lib/lodestar is lodestar's.
        if drop, let config { chown((config as NSString).deletingLastPathComponent, 65534, 65534) }
        process.executableURL = URL(fileURLWithPath: launcher.first ?? Paths.binary)
        process.currentDirectoryURL = URL(fileURLWithPath: workDir)
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        var args = ["serve", "--zones", zones, "--listen", "127.0.0.1:\(port)"]
        if let config { args += ["--config", config] }
        if !rateLimit { args += ["--rate-limit", "0"] }
        process.arguments = (launcher.isEmpty ? [] : Array(launcher.dropFirst()) + [Paths.binary]) + args + extra
        let logHandle = FileHandle(forWritingAtPath: logPath)
        process.standardOutput = logHandle
        process.standardError = logHandle
        guard FileManager.default.isExecutableFile(atPath: Paths.binary) else {
            throw TestFailure("no lodestar binary at \(Paths.binary): run `swift build` first")
        }
        try process.run()
        let deadline = Date().addingTimeInterval(startupTimeout)
        while Date() < deadline {
            if !process.isRunning { throw TestFailure("lodestar exited: \(log())") }
            if let r = try? dig(["example.com", "SOA", "+tries=1", "+time=1"]), r.status == "NOERROR",
                let t = try? dig(["example.com", "SOA", "+tcp", "+tries=1", "+time=1"]), t.status == "NOERROR"
            {
                return
            }
            usleep(100_000)
        }
        stop()
        throw TestFailure("lodestar did not answer within \(startupTimeout) s: \(log())")
    }

    var pid: Int32 { process.processIdentifier }

    func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Queries with dig on this server; `args` as on dig's command line.
    func dig(_ args: [String]) throws -> DigResult {
        let r = try Command.run("/usr/bin/dig", ["@127.0.0.1", "-p", "\(port)", "+norec"] + args, timeout: 15)
        return DigResult(r.output)
    }

    func dig(_ args: String...) throws -> DigResult { try dig(args) }

    func signal(_ sig: Int32) { kill(pid, sig) }

    /// SIGTERM, then SIGKILL after 5 s; waits for the exit.
    func stop() {
        guard process.isRunning else { return }
        kill(pid, SIGTERM)
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(pid, SIGKILL) }
        process.waitUntilExit()
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: workDir)
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}
