import Foundation
import Testing

/// lodestar and knot serve the same zones; Tests/Differential/knot_diff.py sends both the same
/// queries (UDP and TCP, with and without EDNS, with DO, malformed packets) and compares rcode,
/// flags and every section.
@Suite("Differential comparison with knot")
struct KnotDifferentialTests {
    static func compare(lodestar: Int, knot: Int, extra: [String] = []) throws -> (
        summary: String, output: String, status: Int32
    ) {
        let r = try Command.run(
            "/usr/bin/env",
            [
                "python3", Paths.packageRoot + "/Tests/Differential/knot_diff.py",
                "\(lodestar)", "\(knot)"
            ] + extra, timeout: 150)
        let summary = r.output.split(separator: "\n").last.map(String.init) ?? ""
        let diffs = r.output.split(separator: "\n").filter { $0.hasPrefix("DIFF") || $0.hasPrefix("  ") }.prefix(40)
        return (summary, diffs.joined(separator: "\n") + "\n" + r.error, r.status)
    }

    @Test("The fixture zones: ~2,500 queries, no difference but those issue #2 asks for", .timeLimit(.minutes(3)))
    func sameAsKnot() throws {
        let knot = try KnotProcess(zones: Paths.fixtures + "/zones", probe: "example.com")
        defer { knot.stop() }
        let server = try LodestarProcess()
        defer { server.stop() }
        let r = try Self.compare(lodestar: server.port, knot: knot.port)
        #expect(r.status == 0 && r.summary.hasSuffix(" 0 differences"), "\(r.summary)\n\(r.output)")
        #expect((Int(r.summary.split(separator: " ").first ?? "") ?? 0) >= 2000, "\(r.summary)")
    }

    @Test(
        "Seeded random zones (cuts, chains, loops, wildcards, DNAMEs, empty non-terminals): same answers as knot",
        .timeLimit(.minutes(3)), arguments: [1, 2, 3, 4, 5, 6, 8])
    func randomZones(seed: Int) throws {
        let dir = try Paths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Command.run(
            "/usr/bin/env", ["python3", Paths.packageRoot + "/Tests/Differential/random_zone.py", "\(seed)", dir])
        let zones = dir + "/zones"
        try FileManager.default.createDirectory(atPath: zones, withIntermediateDirectories: true)
        try FileManager.default.moveItem(atPath: dir + "/rnd.test.zone", toPath: zones + "/rnd.test.zone")
        // The harness waits for example.com: serve the bundled zone beside the random one.
        try FileManager.default.copyItem(
            atPath: Paths.packageRoot + "/zones/example.com.zone", toPath: zones + "/example.com.zone")
        let knot = try KnotProcess(zones: zones, probe: "rnd.test")
        defer { knot.stop() }
        let server = try LodestarProcess(zones: zones)
        defer { server.stop() }
        let r = try Self.compare(lodestar: server.port, knot: knot.port, extra: ["--queries", dir + "/queries.txt"])
        #expect(r.status == 0 && r.summary == "1500 queries, 0 differences", "seed \(seed): \(r.summary)\n\(r.output)")
    }

    @Test(
        "Zone files: every corpus case and 40 seeded re-formattings load to the same records as in knot, or both refuse them",
        .timeLimit(.minutes(3)), arguments: [1, 2])
    func zoneLoading(seed: Int) throws {
        let dir = try Paths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try Command.run(
            "/usr/bin/env",
            [
                "python3", Paths.packageRoot + "/Tests/Differential/zone_load_diff.py",
                Paths.binary, dir, "--seed", "\(seed)", "--variants", "40"
            ], timeout: 150)
        let summary = r.output.split(separator: "\n").last.map(String.init) ?? ""
        #expect(r.status == 0 && summary == "77 zones, 0 differences", "seed \(seed): \(r.output)\n\(r.error)")
    }
}
