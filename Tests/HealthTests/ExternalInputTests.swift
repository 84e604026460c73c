import Foundation
import Health
import Testing

/// External input on the health board: combined with the checks by the endpoint's mode, from the
/// admin API with a time to live and from a watched file; time passed in, no sleeping.
@Suite("External health input")
struct ExternalInputTests {
    static let topology = HealthTopology(
        regions: ["r1"], pools: [.init(name: "p1", region: 0, endpoints: [0, 1, 2])],
        endpoints: [
            .init(name: "a", pool: 0), .init(name: "b", pool: 0),
            .init(name: "c", pool: 0, checks: [CheckSpec(kind: .tcp, address: "192.0.2.1", port: 80)])
        ])

    @Test("combined with the checks' verdict as one list of states: all and any")
    func combine() {
        let x = (up: false, reason: "planned work")
        #expect(
            EndpointVerdict.combine(mode: .all, count: 1, checks: (true, "tcp: ok"), external: [x]) == (
                false, "external: planned work"
            ))
        #expect(
            EndpointVerdict.combine(mode: .all, count: 1, checks: (true, "tcp: ok"), external: [(true, "lb")]) == (
                true, "all 2 checks pass"
            ))
        #expect(
            EndpointVerdict.combine(mode: .all, count: 1, checks: (false, "tcp: refused"), external: [x]) == (
                false, "tcp: refused"
            ))
        #expect(
            EndpointVerdict.combine(mode: .any, count: 1, checks: (true, "tcp: ok"), external: [x]) == (true, "tcp: ok")
        )
        #expect(
            EndpointVerdict.combine(mode: .any, count: 1, checks: (false, "tcp: refused"), external: [x])
                == (false, "tcp: refused; external: planned work"))
        #expect(EndpointVerdict.combine(mode: .any, count: 1, checks: nil, external: [x]).up == nil)
        #expect(
            EndpointVerdict.combine(mode: .all, count: 0, checks: nil, external: [x]) == (
                false, "external: planned work"
            )
        )
        #expect(
            EndpointVerdict.combine(mode: .all, count: 1, checks: (true, "tcp: ok"), external: []) == (true, "tcp: ok")
        )
    }

    @Test("the board: the admin's input with a time to live; the checks' verdict under it; expiry")
    func board() {
        var b = HealthBoard(topology: Self.topology)
        b.setObserved([("c", true, "tcp://192.0.2.1:80: connected")], now: 0)
        b.setExternal(
            endpoint: "c", ExternalInput(up: false, reason: "origin LB reports it (admin API)", expires: 2), now: 0)
        #expect(
            b.view.endpoints[2].up == false
                && b.view.endpoints[2].reason == "external: origin LB reports it (admin API)")
        #expect(b.expireExternal(now: 1).isEmpty)
        #expect(b.expireExternal(now: 2).map(\.endpoint) == ["c"])
        #expect(b.view.endpoints[2].up == true && b.view.endpoints[2].reason == "tcp://192.0.2.1:80: connected")
        b.setExternal(endpoint: "a", ExternalInput(up: false, reason: "x", expires: 10), now: 3)
        b.setExternal(endpoint: "a", nil, now: 4)
        #expect(b.view.endpoints[0].up == true && b.view.endpoints[0].reason == "up (not checked)")
    }

    @Test("the API's input and the file's are kept apart: neither replaces the other; both count")
    func apiAndFile() {
        var b = HealthBoard(topology: Self.topology)
        b.setFileExternal(["a": ExternalInput(up: false, reason: "from the file", expires: 20)], now: 0)
        b.setExternal(endpoint: "a", ExternalInput(up: true, reason: "lb (admin API)", expires: 2), now: 0)
        #expect(b.view.endpoints[0].up == false && b.view.endpoints[0].reason == "external: from the file")
        #expect(b.expireExternal(now: 3).map(\.fromFile) == [false], "the API's expired, the file's stays")
        #expect(b.view.endpoints[0].up == false)
        b.setExternal(endpoint: "a", nil, now: 4)
        #expect(b.view.endpoints[0].up == false, "clearing the API's input leaves the file's")
        let v = EndpointVerdict.combine(
            mode: .any, count: 1, checks: (false, "tcp: refused"), external: [(false, "x"), (true, "y")])
        #expect(v.up == true && v.reason == "external: y")
    }

    @Test("a file saved with CRLF line ends, a file not UTF-8, and thousands of unknown names")
    func awkwardFiles() throws {
        let dir = NSTemporaryDirectory() + "lodestar-ext-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/health.txt"
        var w = ExternalFileWatcher(path: path)
        let known = { (n: String) in Self.topology.endpoint(named: n) != nil }
        try "# saved on Windows\r\na down planned\r\nb down too\r\n".write(
            toFile: path, atomically: true, encoding: .utf8)
        let crlf = w.poll(known: known, staleAfter: 60, now: 0, wallNow: Date().timeIntervalSince1970)
        #expect(crlf.inputs?["a"]?.up == false && crlf.inputs?["a"]?.reason == "planned")
        #expect(crlf.inputs?["b"]?.up == false && crlf.inputs?["b"]?.reason == "too")
        try Data([0x61, 0x20, 0x64, 0x6F, 0x77, 0x6E, 0x20, 0xFF, 0xFE, 0x0A]).write(to: URL(fileURLWithPath: path))
        let binary = w.poll(known: known, staleAfter: 60, now: 1, wallNow: Date().timeIntervalSince1970)
        #expect(
            binary.inputs == nil
                && binary.messages.map(\.text) == ["\(path): not UTF-8 text; keeping the previous content"])
        try (0..<3000).map { "ghost\($0) down\n" }.joined().write(toFile: path, atomically: true, encoding: .utf8)
        let ghosts = w.poll(known: known, staleAfter: 60, now: 2, wallNow: Date().timeIntervalSince1970)
        #expect(ghosts.messages.count == 6 && ghosts.messages.last?.text == "\(path): 2995 more lines name no endpoint")
    }

    @Test(
        "the watched file: read when it changes; a bad line keeps the previous content; stale after its time; unknown names said"
    )
    func file() throws {
        let dir = NSTemporaryDirectory() + "lodestar-ext-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/health.txt"
        var w = ExternalFileWatcher(path: path)
        var b = HealthBoard(topology: Self.topology)
        let known = { (n: String) in Self.topology.endpoint(named: n) != nil }
        let missing = w.poll(known: known, staleAfter: 2.5, now: 0, wallNow: 0)
        #expect(
            missing.inputs == nil
                && missing.messages.first?.text.contains("cannot read the external health file") == true)
        #expect(w.poll(known: known, staleAfter: 2.5, now: 0, wallNow: 0).messages.isEmpty, "said once")

        try "# maintenance\na down planned work\nb up\nghost down\n".write(
            toFile: path, atomically: true, encoding: .utf8)
        let mtime = try #require(FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date)
            .timeIntervalSince1970
        let r = w.poll(known: known, staleAfter: 2.5, now: 100, wallNow: mtime)
        #expect(r.messages.map(\.text) == ["\(path):4: no endpoint named ghost"])
        let inputs = try #require(r.inputs)
        b.setFileExternal(inputs, now: 100)
        #expect(b.view.endpoints[0].up == false && b.view.endpoints[0].reason == "external: planned work")
        #expect(b.view.endpoints[1].up == true && b.view.endpoints[1].reason == "external: up")
        #expect(
            w.poll(known: known, staleAfter: 2.5, now: 101, wallNow: mtime + 1).inputs == nil,
            "unchanged: not read again")

        // A line that cannot be parsed keeps the previous content.
        try "a sideways\n".write(toFile: path, atomically: true, encoding: .utf8)
        let bad = w.poll(known: known, staleAfter: 2.5, now: 101, wallNow: Date().timeIntervalSince1970)
        #expect(
            bad.inputs == nil
                && bad.messages.first?.text.hasSuffix(
                    ":1: expected \"ENDPOINT up|down [reason]\"; keeping the previous content") == true
        )
        #expect(b.view.endpoints[0].up == false)
        // Stale: 2.5 s after the file's last good write, its input is ignored ("not checked": up).
        #expect(b.expireExternal(now: 102.4).isEmpty)
        #expect(b.expireExternal(now: 102.6).map(\.fromFile) == [true, true])
        #expect(b.view.endpoints[0].up == true && b.view.endpoints[0].reason == "up (not checked)")

        // A file already older than the stale time is ignored whole; a FIFO in its place is refused, not waited on.
        try "a down\n".write(toFile: path, atomically: true, encoding: .utf8)
        let old = w.poll(known: known, staleAfter: 2.5, now: 200, wallNow: Date().timeIntervalSince1970 + 10)
        #expect(old.inputs == [:] && old.messages.first?.text.contains("older than 2.5 s; ignored") == true)
        try FileManager.default.removeItem(atPath: path)
        #expect(mkfifo(path, 0o600) == 0)
        let fifo = w.poll(known: known, staleAfter: 2.5, now: 201, wallNow: Date().timeIntervalSince1970)
        #expect(fifo.inputs == nil && fifo.messages.first?.text.contains("a regular file") == true)
    }
}
