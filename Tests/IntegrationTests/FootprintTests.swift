import Foundation
import OriginSupport
import Testing

/// The server's memory with GeoLite2-City, started as deployed: the database compiled into the
/// maps and let go, reloads that do not grow it, `explain` opening it again only for a while.
@Suite("Footprint")
struct FootprintTests {
    /// Resident set size of a process in KiB.
    static func rss(_ pid: Int32) -> Int {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
    }

    /// Whether the process maps its private copy of a database (`memfd:lodestar-geo`).
    static func mapsDatabase(_ pid: Int32) -> Bool {
        ((try? String(contentsOfFile: "/proc/\(pid)/maps", encoding: .utf8)) ?? "").contains("lodestar-geo")
    }

    @Test(
        "GeoLite2-City: not kept mapped once compiled; ten reloads that re-open it stay within 10% of the first start; an unchanged one is not re-opened; explain opens it for a while",
        .enabled(if: GeoLite2.path != nil, "needs the GeoLite2-City database"), .timeLimit(.minutes(4)))
    func reloadsDoNotGrow() throws {
        let real = try #require(GeoLite2.path)
        let setup = try GSLBSetup()
        defer { setup.remove() }
        let db = try setup.copyDatabase(real)
        let server = try setup.start(timeout: 60)
        defer { server.stop() }
        // Over UDP and TCP, from the server as the suite runs it (nobody, no capability).
        func europe() throws -> Bool {
            try ["+notcp", "+tcp"].allSatisfy { transport in
                let a = try server.dig("www.example.com", "A", "+subnet=2.16.0.0/24", transport).addresses
                return !a.isEmpty && a.allSatisfy { GSLBTests.region($0) == "eu" }
            }
        }
        #expect(try europe())
        let log = server.log()
        #expect(log.contains("geo: \(db) (GeoLite2-City") && log.contains("compiled in"), "\(log.suffix(800))")
        #expect(!Self.mapsDatabase(server.pid), "the database stays mapped after the compile")
        usleep(500_000)
        let first = Self.rss(server.pid)
        #expect(first > 0)
        for i in 1...10 {
            // A new version of the file, as a download replaces it: by rename, a new inode.
            try FileManager.default.copyItem(atPath: real, toPath: db + ".new")
            #expect(rename(db + ".new", db) == 0)
            server.signal(SIGHUP)
            let done = ReloadTests.waitFor(60) { server.log().contains("reloaded: generation \(i + 1),") }
            #expect(done, "reload \(i): \(server.log().suffix(600))")
            #expect(try europe())
        }
        #expect(server.log().components(separatedBy: "location map compiled").count == 12, "compiled 11 times")
        // The last reload's memory given back (at once, and again 2 s later).
        usleep(3_000_000)
        let after = Self.rss(server.pid)
        #expect(after * 10 <= first * 11, "RSS \(first) KiB after start, \(after) KiB after ten reloads")
        #expect(!Self.mapsDatabase(server.pid))
        // A reload with the file and the names as they were compiles nothing.
        server.signal(SIGHUP)
        #expect(ReloadTests.waitFor(30) { server.log().contains("location maps unchanged") })
        #expect(server.log().components(separatedBy: "location map compiled").count == 12)
        // explain names the place from the database, opened again, and lets it go once idle.
        let explain = try setup.admin("GET", "/v1/explain?name=www.example.com&client=2.16.0.1")
        #expect(explain.contains("\"continent\"") && explain.contains("EU"), "\(explain.prefix(600))")
        #expect(Self.mapsDatabase(server.pid))
        #expect(ReloadTests.waitFor(30) { !Self.mapsDatabase(server.pid) }, "explain's copy never closed")
        #expect(try europe())
    }

    @Test(
        "A SIGHUP while GeoLite2-City loads does not end the server: it reloads once it runs",
        .enabled(if: GeoLite2.path != nil, "needs the GeoLite2-City database"), .timeLimit(.minutes(2)))
    func hangUpWhileStarting() throws {
        let real = try #require(GeoLite2.path)
        let setup = try GSLBSetup()
        defer { setup.remove() }
        try setup.useDatabase(real)
        // The shell becomes the server (exec); a child of it sends SIGHUP 0.2 s in, mid-load.
        let server = try LodestarProcess(
            zones: setup.dir + "/zones", config: setup.config, startupTimeout: 60,
            launcher: ["/bin/sh", "-c", "(sleep 0.2; kill -HUP $$) & exec \"$0\" \"$@\""])
        defer { server.stop() }
        #expect(
            ReloadTests.waitFor(30) { server.log().contains("reloaded: generation 2,") }, "\(server.log().suffix(600))")
        #expect(server.log().contains("SIGHUP while starting: reloading"))
        #expect(server.process.isRunning)
        let a = try server.dig("www.example.com", "A", "+subnet=2.16.0.0/24").addresses
        #expect(!a.isEmpty && a.allSatisfy { GSLBTests.region($0) == "eu" }, "\(a)")
    }
}
