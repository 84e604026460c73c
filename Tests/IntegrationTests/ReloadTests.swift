import Foundation
import Synchronization
import Testing

@Suite("SIGHUP reload and SIGTERM")
struct ReloadTests {
    static func copyFixtures() throws -> String {
        let dir = try Paths.temporaryDirectory()
        for f in ["example.com.zone", "child.example.com.zone", "included.inc"] {
            try FileManager.default.copyItem(atPath: Paths.fixtures + "/zones/" + f, toPath: dir + "/" + f)
        }
        return dir
    }

    static func waitFor(_ timeout: Double, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try condition() { return true }
            usleep(50_000)
        }
        return false
    }

    @Test("A good reload swaps in new data; a bad one keeps the old data serving", .timeLimit(.minutes(1)))
    func reload() throws {
        let dir = try Self.copyFixtures()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try LodestarProcess(zones: dir)
        defer { server.stop() }
        let zone = dir + "/example.com.zone"
        let original = try String(contentsOfFile: zone, encoding: .utf8)
        try (original + "new IN A 192.0.2.123\n").write(toFile: zone, atomically: true, encoding: .utf8)
        server.signal(SIGHUP)
        #expect(
            try Self.waitFor(5) {
                try server.dig("new.example.com", "A").answer == ["new.example.com. 3600 IN A 192.0.2.123"]
            })
        // Break the zone: the previous version keeps serving, and the log says where the problem is.
        try (original + "new IN A 192.0.2.123\nbroken IN A not-an-address\n").write(
            toFile: zone, atomically: true, encoding: .utf8)
        server.signal(SIGHUP)
        #expect(
            Self.waitFor(5) {
                server.log().contains(
                    "example.com.zone:\(original.split(separator: "\n", omittingEmptySubsequences: false).count + 1):")
            },
            "\(server.log())")
        #expect(try server.dig("new.example.com", "A").answer == ["new.example.com. 3600 IN A 192.0.2.123"])
        #expect(try server.dig("www.child.example.com", "A").status == "NOERROR")
        #expect(server.process.isRunning)
    }

    @Test("A config broken before SIGHUP keeps the whole previous snapshot serving", .timeLimit(.minutes(1)))
    func badConfigReload() throws {
        let dir = try Self.copyFixtures()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = dir + "/lodestar.yaml"
        try "server:\n  nsid: before\n".write(toFile: config, atomically: true, encoding: .utf8)
        let server = try LodestarProcess(zones: dir, config: config)
        defer { server.stop() }
        try "server:\n  nsid: [not, a, string]\n".write(toFile: config, atomically: true, encoding: .utf8)
        server.signal(SIGHUP)
        #expect(
            Self.waitFor(5) { server.log().contains("reload failed") && server.log().contains(config + ":2:") },
            "\(server.log())")
        let r = try server.dig("+nsid", "www.example.com", "A")
        #expect(r.answer.count == 2)
        #expect(r.options.contains { $0.contains("before") }, "the old config still applies: \(r)")
    }

    @Test("Reloading under query load loses no query", .timeLimit(.minutes(2)))
    func reloadUnderLoad() throws {
        let dir = try Self.copyFixtures()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try LodestarProcess(zones: dir)
        defer { server.stop() }
        let zone = dir + "/example.com.zone"
        let original = try String(contentsOfFile: zone, encoding: .utf8)
        let done = Atomic<Bool>(false)
        let reloads = Atomic<Int>(0)
        let reloader = Thread {
            var k = 0
            while !done.load(ordering: .relaxed) && k < 20 {
                try? (original + "gen IN TXT \"\(k)\"\n").write(toFile: zone, atomically: true, encoding: .utf8)
                kill(server.pid, SIGHUP)
                reloads.add(1, ordering: .relaxed)
                k += 1
                usleep(50_000)
            }
        }
        reloader.start()
        // Queries flow until the 20 reloads are done, bounded by 200,000 queries and 20 s; each must be
        // answered within 1 s.
        let fd = RawDNS.udpSocket(port: server.port, timeout: 1)
        defer { close(fd) }
        var lost = 0
        var wrong = 0
        var sent = 0
        let deadline = Date().addingTimeInterval(20)
        var buf = [UInt8](repeating: 0, count: 4096)
        while sent < 200_000 && Date() < deadline && (reloads.load(ordering: .relaxed) < 20 || sent < 2000) {
            let id = UInt16(truncatingIfNeeded: sent)
            let q = RawDNS.query(id: id, name: "www.example.com", type: 1)
            _ = q.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
            sent += 1
            var n = 0
            repeat {  // skip a late reply to an earlier query, if any
                n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            } while n >= 12 && RawDNS.id(Array(buf[0..<n])) != id
            if n < 12 {
                lost += 1
                continue
            }
            let reply = Array(buf[0..<n])
            if RawDNS.rcode(reply) != 0 || RawDNS.ancount(reply) != 2 { wrong += 1 }
        }
        done.store(true, ordering: .relaxed)
        while !reloader.isFinished { usleep(10_000) }
        #expect(reloads.load(ordering: .relaxed) == 20, "every reload happened while queries flowed")
        #expect(sent >= 2000)
        #expect(lost == 0, "\(lost) of \(sent) queries lost")
        #expect(wrong == 0, "\(wrong) of \(sent) answers wrong")
        #expect(server.log().contains("reloaded: generation"))
    }

    @Test("SIGTERM stops the server cleanly", .timeLimit(.minutes(1)))
    func sigterm() throws {
        let server = try LodestarProcess()
        server.signal(SIGTERM)
        #expect(Self.waitFor(5) { !server.process.isRunning })
        server.process.waitUntilExit()
        #expect(server.process.terminationStatus == 0)
    }
}
