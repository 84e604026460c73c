import Anycast
import Foundation
import Settings
import Testing

@Suite("BIRD reply framing, names and the client's deadlines")
struct BirdProtocolTests {
    static func parse(_ raw: String) throws -> [BirdReply] {
        var p = BirdReplyParser()
        var out: [BirdReply] = []
        for line in raw.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
            if let r = try p.feed(String(line)) { out.append(r) }
        }
        return out
    }

    @Test("replies as BIRD 2.0.12 sends them: continuation codes, leading-space lines, async lines, final codes")
    func framing() throws {
        // Raw bytes captured from bird 2.0.12 (../shared/research/bird-control-socket.md §1.2).
        var r = try Self.parse("0009-svc_dns4: disabled\n0000 \n")
        #expect(r.count == 1 && r[0].code == 0 && r[0].ok && r[0].lines.map(\.code) == [9, 0])
        r = try Self.parse(
            "1007-Table master4:\n 198.51.100.53/32     blackhole [svc_dns4 2026-11-23 07:19:39.602] * (200)\n0000 \n")
        #expect(r[0].lines.count == 3 && r[0].lines[1].code == 1007)
        #expect(r[0].lines[1].text == "198.51.100.53/32     blackhole [svc_dns4 2026-11-23 07:19:39.602] * (200)")
        r = try Self.parse("+Disabling protocol svc_other4\n8001 Network not found\n")
        #expect(
            r[0].code == 8001 && !r[0].ok && r[0].async == ["Disabling protocol svc_other4"]
                && r[0].text == "Network not found")
        r = try Self.parse(
            "0002-Reading configuration from /etc/bird.conf\n0003 Reconfigured\n0001 BIRD 2.0.12 ready.\n")
        #expect(r.map(\.code) == [3, 1], "two replies, each ending on its final line")
        r = try Self.parse(" \tBGP.as_path: 65001\n0000 \n")
        #expect(r[0].lines[0].text == "\tBGP.as_path: 65001", "exactly one framing space is stripped")
        #expect(throws: BirdError.self) { try Self.parse("garbage\n") }
        #expect(throws: BirdError.self) { try Self.parse("12345 nope\n") }
    }

    @Test("only validated protocol names and messages reach a command")
    func names() {
        #expect(BirdNames.isSymbol("svc_dns4") && BirdNames.isSymbol("_x") && BirdNames.isSymbol("Lodestar1"))
        #expect(
            !BirdNames.isSymbol("4svc") && !BirdNames.isSymbol("svc dns") && !BirdNames.isSymbol("svc;down")
                && !BirdNames.isSymbol("") && !BirdNames.isSymbol(String(repeating: "a", count: 65))
                && !BirdNames.isSymbol("své"))
        #expect(BirdNames.message("say \"hi\"\n\\") == "say ?hi???")
        #expect(BirdNames.message(String(repeating: "x", count: 1000)).count == 200)
    }

    @Test("the client refuses long or multi-line commands, and every read has a deadline")
    func deadlines() throws {
        let dir = "/tmp/ls-bc-" + String(UUID().uuidString.prefix(8))
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/silent.ctl"
        // A socket that accepts and never greets: what a hung BIRD looks like.
        let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(s) }
        var addr = BirdClient.unixAddress(path)
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        #expect(bound == 0 && listen(s, 4) == 0)
        let client = BirdClient(path: path, timeout: 0.3)
        let t0 = Date()
        #expect(throws: BirdError.self) { try client.connect() }
        #expect(Date().timeIntervalSince(t0) < 1, "gave up after its deadline")
        #expect(throws: BirdError("refusing to send a command that is empty, longer than 512 bytes or multi-line")) {
            try client.send(String(repeating: "a", count: 600))
        }
        #expect(throws: BirdError.self) { try client.send("show status\ndisable all") }
        let missing = BirdClient(path: dir + "/none.ctl", timeout: 0.3)
        #expect(throws: BirdError("\(dir)/none.ctl: no such socket (is BIRD running with this control socket?)")) {
            try missing.connect()
        }
    }
}

@Suite("Route health: drain, the last-POP guard, shutdown")
struct RouteHealthTests {
    @Test("withdraws when unhealthy and announces on recovery; counts withdrawals")
    func basic() {
        var r = RouteHealth()
        #expect(r.desired == .withdraw && r.reason == "not checked yet")
        do {
            let changed = r.evaluate(healthy: false, why: "self-check not passed yet", otherPaths: nil, now: 0)
            #expect(!changed)
        }
        do {
            let changed = r.evaluate(healthy: true, why: "self-check passes", otherPaths: nil, now: 1)
            #expect(changed && r.desired == .announce)
        }
        do {
            let changed = r.evaluate(healthy: false, why: "self-check failed: timeout", otherPaths: nil, now: 2)
            #expect(changed)
        }
        #expect(
            r.desired == .withdraw && r.reason == "self-check failed: timeout" && r.withdrawals == 1
                && r.lastChange == 2)
    }

    @Test("soft drain first: GRACEFUL_SHUTDOWN for drain-time, then the withdrawal; recovery cancels it")
    func drain() {
        var r = RouteHealth(drainTime: 10)
        _ = r.evaluate(healthy: true, why: "ok", otherPaths: nil, now: 0)
        do {
            let changed = r.evaluate(healthy: false, why: "pool na is down", otherPaths: nil, now: 1)
            #expect(changed && r.desired == .drain)
        }
        do {
            let changed = r.evaluate(healthy: false, why: "pool na is down", otherPaths: nil, now: 10.9)
            #expect(!changed)
        }
        do {
            let changed = r.evaluate(healthy: false, why: "pool na is down", otherPaths: nil, now: 11)
            #expect(changed && r.desired == .withdraw)
        }
        _ = r.evaluate(healthy: true, why: "ok", otherPaths: nil, now: 20)
        _ = r.evaluate(healthy: false, why: "x", otherPaths: nil, now: 21)
        do {
            let changed = r.evaluate(healthy: true, why: "ok", otherPaths: nil, now: 22)
            #expect(changed && r.desired == .announce && r.drainSince == nil)
        }
    }

    @Test("the guard keeps the last POP announced, with an alarm; shutdown withdraws regardless")
    func guardLastPOP() {
        var r = RouteHealth(minOtherPaths: 2)
        _ = r.evaluate(healthy: true, why: "ok", otherPaths: nil, now: 0)
        #expect(r.needsPathCount(healthy: false) && !r.needsPathCount(healthy: true))
        do {
            let changed = r.evaluate(healthy: false, why: "self-check failed", otherPaths: 1, now: 1)
            #expect(!changed)
        }
        #expect(
            r.desired == .announce
                && r.alarm?.contains("only 1 other path(s) visible, fewer than the minimum 2") == true)
        do {
            let changed = r.evaluate(healthy: false, why: "self-check failed", otherPaths: nil, now: 2)
            #expect(!changed)
        }
        #expect(r.alarm?.contains("cannot count other POPs' paths") == true)
        do {
            let changed = r.evaluate(healthy: false, why: "self-check failed", otherPaths: 2, now: 3)
            #expect(changed && r.desired == .withdraw && r.alarm == nil)
        }
        _ = r.evaluate(healthy: true, why: "ok", otherPaths: nil, now: 4)
        do {
            let changed = r.evaluate(healthy: false, why: "lodestar is stopping", otherPaths: 0, stopping: true, now: 5)
            #expect(changed && r.desired == .withdraw)
        }
    }
}
