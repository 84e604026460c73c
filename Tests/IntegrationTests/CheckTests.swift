import Foundation
import Testing

@Suite("lodestar check and bad zones")
struct CheckTests {
    static let expected = [
        "cname.test.zone:5: CNAME at www.cname.test. beside other data",
        "glue.test.zone:7: mail.sub.glue.test. MX is below the delegation at sub.glue.test.",
        "include.test.zone:5: $INCLUDE file",
        "nons.test.zone:1: no NS records at the apex nons.test.",
        "nosoa.test.zone:1: no SOA record at the apex nosoa.test.",
        "outside.test.zone:5: warning: owner www.other.test. is outside the zone outside.test.; record ignored",
        "syntax.test.zone:6: syntax error",
        "twosoa.test.zone:5: SOA is only allowed at the zone apex"
    ]

    @Test("check prints every problem as file:line: message and exits 1", .timeLimit(.minutes(1)))
    func checkReportsEveryProblem() throws {
        let r = try Command.run(Paths.binary, ["check", "--zones", Paths.fixtures + "/bad-zones"])
        #expect(r.status == 1)
        let lines = r.error.split(separator: "\n").map(String.init)
        for e in Self.expected {
            #expect(
                lines.contains {
                    $0.hasPrefix(Paths.fixtures + "/bad-zones/" + e.prefix { $0 != ":" }) && $0.contains(e)
                },
                "missing \(e) in:\n\(r.error)")
        }
        #expect(!lines.contains { $0.contains("good.test.zone") }, "the good zone has no problem")
    }

    @Test("check passes on the bundled example and the fixtures", .timeLimit(.minutes(1)))
    func checkPasses() throws {
        for dir in [Paths.packageRoot + "/zones", Paths.fixtures + "/zones"] {
            let r = try Command.run(Paths.binary, ["check", "--zones", dir])
            #expect(r.status == 0, "\(dir): \(r.error)")
            #expect(r.output.hasPrefix("ok: "))
        }
    }

    @Test("Broken zones are not served; the good zone beside them is", .timeLimit(.minutes(1)))
    func badZonesSkipped() throws {
        let dir = try Paths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // The harness waits for example.com: serve it beside the broken ones.
        for f in try FileManager.default.contentsOfDirectory(atPath: Paths.fixtures + "/bad-zones") {
            try FileManager.default.copyItem(atPath: Paths.fixtures + "/bad-zones/" + f, toPath: dir + "/" + f)
        }
        try FileManager.default.copyItem(
            atPath: Paths.packageRoot + "/zones/example.com.zone", toPath: dir + "/example.com.zone")
        let server = try LodestarProcess(zones: dir)
        defer { server.stop() }
        #expect(try server.dig("good.good.test", "A").answer == ["good.good.test. 300 IN A 192.0.2.5"])
        #expect(try server.dig("ns1.cname.test", "A").status == "REFUSED")
        #expect(try server.dig("ns1.syntax.test", "A").status == "REFUSED")
        #expect(server.log().contains("syntax.test.zone:6:"), "the log names file and line")
    }

    @Test("A bad config is rejected with file:line", .timeLimit(.minutes(1)))
    func badConfig() throws {
        let dir = try Paths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "server:\n  listen: [\"127.0.0.1:53\"]\n  tcp-idle-timeout: never\n".write(
            toFile: dir + "/c.yaml", atomically: true, encoding: .utf8)
        let r = try Command.run(
            Paths.binary, ["check", "--config", dir + "/c.yaml", "--zones", Paths.packageRoot + "/zones"])
        #expect(r.status == 1)
        #expect(r.error.contains(dir + "/c.yaml:3: tcp-idle-timeout must be a number"), "\(r.error)")
        try "server:\n  lisen: x\n".write(toFile: dir + "/d.yaml", atomically: true, encoding: .utf8)
        let s = try Command.run(Paths.binary, ["serve", "--config", dir + "/d.yaml"])
        #expect(s.status != 0)
        #expect(s.error.contains(dir + "/d.yaml:2: unknown key \"lisen\""), "\(s.error)")
    }

    @Test(
        "A latency map needs the geo database only for continent or country rows, or a region left to the distance estimate",
        .timeLimit(.minutes(1)))
    func latencyWithoutDatabase() throws {
        let dir = try Paths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func check(_ latency: String) throws -> Command.Result {
            try """
            regions: { us-east: {}, eu-central: {} }
            pools:
              na: { region: us-east, endpoints: [{ name: na-1, address: 192.0.2.11 }] }
              eu: { region: eu-central, endpoints: [{ name: eu-1, address: 198.51.100.11 }] }
            names:
              www.example.com: { policy: [latency, failover], pools: [na, eu], latency: \(latency) }
            """.write(toFile: dir + "/c.yaml", atomically: true, encoding: .utf8)
            return try Command.run(
                Paths.binary, ["check", "--config", dir + "/c.yaml", "--zones", Paths.packageRoot + "/zones"])
        }
        let ok = try check(
            "{ nets: { 10.0.0.0/8: { us-east: 50, eu-central: 5 } }, default: { us-east: 20, eu-central: 60 } }")
        #expect(ok.status == 0, "\(ok.error)")
        for bad in [
            "{ continent: { EU: { eu-central: 10, us-east: 90 } }, default: { us-east: 20, eu-central: 60 } }",
            "{ default: { us-east: 20 } }"
        ] {
            let r = try check(bad)
            #expect(
                r.status == 1
                    && r.error.contains(
                        dir + "/c.yaml:6: name www.example.com. has a latency map by continent or country"),
                "\(r.error)")
        }
    }
}
