import Foundation
import Testing

/// lodestar and knot serve the same fixture zones; Tests/Differential/knot_diff.py sends both
/// ~2,500 queries (UDP and TCP, with and without EDNS, malformed packets) and compares the answers.
@Suite("Differential comparison with knot")
struct KnotDifferentialTests {
    static let knotd = ["/usr/sbin/knotd", "/usr/bin/knotd"].first { FileManager.default.isExecutableFile(atPath: $0) }

    @Test("lodestar answers as knot does, except where issue #2 asks otherwise", .timeLimit(.minutes(3)))
    func sameAsKnot() throws {
        let knotd = try #require(Self.knotd, "knotd is not installed: scripts/test.sh installs the Debian package knot")
        let dir = try Paths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let port = FreePort.pick()
        let config = """
            server:
                listen: 127.0.0.1@\(port)
                rundir: \(dir)
            database:
                storage: \(dir)/db
            template:
              - id: default
                storage: \(Paths.fixtures)/zones
                semantic-checks: off
            zone:
              - domain: example.com
                file: example.com.zone
              - domain: child.example.com
                file: child.example.com.zone
            log:
              - target: stderr
                any: warning
            """
        try config.write(toFile: dir + "/knot.conf", atomically: true, encoding: .utf8)
        let knot = Process()
        knot.executableURL = URL(fileURLWithPath: knotd)
        knot.arguments = ["-c", dir + "/knot.conf"]
        knot.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try knot.run()
        defer {
            kill(knot.processIdentifier, SIGTERM)
            let deadline = Date().addingTimeInterval(5)
            while knot.isRunning && Date() < deadline { usleep(20_000) }
            if knot.isRunning { kill(knot.processIdentifier, SIGKILL) }
            knot.waitUntilExit()
        }
        let server = try LodestarProcess()
        defer { server.stop() }
        // Wait for knot to load its zones (bounded).
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            let r = try Command.run("/usr/bin/dig", ["@127.0.0.1", "-p", "\(port)", "+tries=1", "+time=1", "example.com", "SOA"])
            if r.output.contains("status: NOERROR") { break }
            usleep(100_000)
        }
        let r = try Command.run("/usr/bin/env", ["python3", Paths.packageRoot + "/Tests/Differential/knot_diff.py",
                                                 "\(server.port)", "\(port)"], timeout: 150)
        let summary = r.output.split(separator: "\n").last.map(String.init) ?? ""
        #expect(r.status == 0, "\(r.output.split(separator: "\n").filter { $0.hasPrefix("DIFF") || $0.hasPrefix("  ") }.prefix(40).joined(separator: "\n"))\n\(r.error)")
        #expect(summary.hasSuffix(" 0 differences"), "\(summary)")
        let count = Int(summary.split(separator: " ").first ?? "") ?? 0
        #expect(count >= 2000, "the comparison ran \(count) queries")
    }
}
