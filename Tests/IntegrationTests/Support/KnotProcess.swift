import Foundation
import OriginSupport

/// A real knotd serving a folder of NAME.zone files on a free loopback port, stopped by pid.
final class KnotProcess: @unchecked Sendable {
    static let binary = ["/usr/sbin/knotd", "/usr/bin/knotd"].first { FileManager.default.isExecutableFile(atPath: $0) }

    let port: Int
    let process: Process
    let dir: String

    /// Starts knotd on `zones` (every NAME.zone) and waits (at most 15 s) until `probe` SOA answers.
    init(zones: String, probe: String) throws {
        guard let binary = Self.binary else {
            throw TestFailure("knotd is not installed: scripts/test.sh installs the Debian package knot")
        }
        dir = try Paths.temporaryDirectory()
        port = FreePort.pick()
        let names = try FileManager.default.contentsOfDirectory(atPath: zones).filter { $0.hasSuffix(".zone") }
            .map { String($0.dropLast(5)) }
        let config = """
            server:
                listen: 127.0.0.1@\(port)
                rundir: \(dir)
            database:
                storage: \(dir)/db
            template:
              - id: default
                storage: \(zones)
                semantic-checks: off
            zone:
            \(names.map { "  - domain: \($0)\n    file: \($0).zone" }.joined(separator: "\n"))
            log:
              - target: stderr
                any: warning
            """
        try config.write(toFile: dir + "/knot.conf", atomically: true, encoding: .utf8)
        process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["-c", dir + "/knot.conf"]
        FileManager.default.createFile(atPath: dir + "/knot.log", contents: nil)
        process.standardError = FileHandle(forWritingAtPath: dir + "/knot.log")
        try process.run()
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            let r = try Command.run(
                "/usr/bin/dig", ["@127.0.0.1", "-p", "\(port)", "+tries=1", "+time=1", probe, "SOA"])
            if r.output.contains("status: NOERROR") { return }
            usleep(100_000)
        }
        stop()
        throw TestFailure(
            "knotd did not serve \(probe) within 15 s: \((try? String(contentsOfFile: dir + "/knot.log", encoding: .utf8)) ?? "")"
        )
    }

    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: dir)
    }
}
