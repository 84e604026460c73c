import Foundation
import Health
import Logging
import NIOPosix
import OriginSupport
import Prober
import Steering
import Testing

@Suite("Probes against real origins on loopback", .serialized)
struct ProbeTests {
    static func run(_ spec: CheckSpec) throws -> (ProbeResult, Double) {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let runner = ProbeRunner(loop: group.next())
        let t0 = Date()
        let r = try runner.run(spec).wait()
        return (r, Date().timeIntervalSince(t0))
    }

    static func http(_ port: Int, timeout: Double = 0.5, body: String? = nil) -> CheckSpec {
        var s = CheckSpec(kind: .http, address: "127.0.0.1", port: port)
        s.timeout = timeout
        s.path = "/health"
        s.expectBody = body
        return s
    }

    static func reason(_ r: ProbeResult) -> String {
        if case .failure(let why) = r.outcome { return why }
        return "ok"
    }

    @Test("HTTP: each way an origin can fail gives its own reason, within the deadline", .timeLimit(.minutes(1)))
    func httpFailures() throws {
        let modes = ["ok", "500", "hang", "garbage", "reset", "trickle", "down", "slow:300"]
        let ports = modes.map { _ in FreePort.pick() }
        let origins = try Origins(ports.map(String.init))
        defer { origins.stop() }
        for (m, p) in zip(modes, ports) { try origins.mode(p, m) }
        let want: [String: (kind: String, reason: String)] = [
            "ok": ("ok", "ok"),
            "500": ("http-status", "HTTP 500"),
            "hang": ("timeout", "timeout after 0.5 s waiting for the response"),
            "garbage": ("garbage", "not an HTTP response (starts with \"\\x00\\x01garbage that i\")"),
            "reset": ("reset", "connection reset"),
            "trickle": ("timeout", "timeout after 0.5 s reading the response"),
            "down": ("refused", "connection refused"),
            "slow:300": ("ok", "ok")
        ]
        for (m, p) in zip(modes, ports) {
            let (r, took) = try Self.run(Self.http(p))
            #expect(r.kind == want[m]!.kind, "\(m): \(r)")
            #expect(Self.reason(r).hasPrefix(want[m]!.reason), "\(m): \(Self.reason(r))")
            #expect(took < 0.5 + 0.4, "\(m) took \(took) s with a 0.5 s timeout")
            if m == "slow:300", case .success(let rtt) = r.outcome {
                #expect(rtt >= 0.3 && rtt < 0.5, "the RTT includes the origin's 300 ms")
            }
        }
        // The body must contain the expected text; status codes outside the set fail.
        #expect(Self.reason(try Self.run(Self.http(ports[0], body: "ok")).0) == "ok")
        let (r, _) = try Self.run(Self.http(ports[0], body: "healthy"))
        #expect(r.kind == "body" && Self.reason(r) == "body lacks \"healthy\" in its first 4096 bytes")
        var only500 = Self.http(ports[1])
        only500.expectStatus = [500...500]
        #expect(try Self.run(only500).0.kind == "ok")
        var tcp = CheckSpec(kind: .tcp, address: "127.0.0.1", port: ports[2])
        tcp.timeout = 0.5
        #expect(try Self.run(tcp).0.kind == "ok", "a hanging HTTP server still accepts TCP")
        tcp.port = ports[6]
        #expect(Self.reason(try Self.run(tcp).0) == "connection refused")
    }

    @Test("HTTPS: certificates are validated by default; expiry is reported in days", .timeLimit(.minutes(1)))
    func https() throws {
        let good = FreePort.pick()
        let expired = FreePort.pick()
        let origins = try Origins(["\(good):tls=good", "\(expired):tls=expired"])
        defer { origins.stop() }
        var s = CheckSpec(kind: .https, address: "127.0.0.1", port: good)
        s.timeout = 2
        // The system's roots do not know the test CA.
        var (r, _) = try Self.run(s)
        #expect(r.kind == "cert-untrusted", "\(r)")
        #expect(Self.reason(r).hasPrefix("certificate not trusted for 127.0.0.1"))
        s.caFile = origins.certs + "/ca.pem"
        (r, _) = try Self.run(s)
        #expect(r.kind == "ok", "\(r)")
        #expect(r.certDaysLeft.map { $0 > 29 && $0 < 30.1 } == true, "days left: \(String(describing: r.certDaysLeft))")
        s.certMinDays = 45
        (r, _) = try Self.run(s)
        #expect(r.kind == "cert-expiring" && Self.reason(r).hasPrefix("certificate expires in 30.0 days"), "\(r)")
        s.certMinDays = 0
        s.sni = "origin.test"
        (r, _) = try Self.run(s)
        #expect(r.kind == "ok", "the name in the certificate matches the SNI: \(r)")
        s.port = expired
        s.sni = nil
        (r, _) = try Self.run(s)
        #expect(r.kind == "cert-expired", "\(r)")
        #expect(Self.reason(r).hasPrefix("certificate expired on "), "\(Self.reason(r))")
        #expect(r.certDaysLeft.map { $0 < -2.9 && $0 > -3.1 } == true)
        s.verifyTLS = false
        (r, _) = try Self.run(s)
        #expect(r.kind == "ok", "tls-verify: false accepts it: \(r)")
    }

    @Test("DNS: rcode, answers, garbage and silence", .timeLimit(.minutes(1)))
    func dns() throws {
        let port = FreePort.pick()
        let origins = try Origins(["\(port):dns"])
        defer { origins.stop() }
        var s = CheckSpec(kind: .dns, address: "127.0.0.1", port: port)
        s.query = "www.example.com"
        s.qtype = 1
        s.expectAnswer = true
        s.timeout = 0.5
        #expect(try Self.run(s).0.kind == "ok")
        try origins.mode(port, "500")
        #expect(Self.reason(try Self.run(s).0) == "DNS rcode SERVFAIL")
        s.expectRcode = [0, 2]
        #expect(Self.reason(try Self.run(s).0) == "DNS reply without answers")
        try origins.mode(port, "garbage")
        #expect(try Self.run(s).0.kind == "garbage")
        // A reply with our id that does not echo our question is not an answer to it.
        try origins.mode(port, "wrong-question")
        #expect(try Self.run(s).0.kind == "dns-question")
        try origins.mode(port, "hang")
        let (r, took) = try Self.run(s)
        #expect(Self.reason(r) == "timeout after 0.5 s waiting for the DNS reply" && took < 0.9)
        try origins.mode(port, "down")
        #expect(Self.reason(try Self.run(s).0) == "connection refused", "ICMP port unreachable on a connected socket")
    }

    @Test("HTTP: a chunked body is decoded as HTTP, so expect-body matches across chunks", .timeLimit(.minutes(1)))
    func chunked() throws {
        let port = FreePort.pick()
        let origins = try Origins(["\(port)"])
        defer { origins.stop() }
        try origins.mode(port, "chunked")
        let (r, _) = try Self.run(Self.http(port, timeout: 2, body: "healthy"))
        #expect(r.kind == "ok", "\(r)")
        // The chunk-size lines are framing, not body: text spanning them does not match.
        let (framing, _) = try Self.run(Self.http(port, timeout: 2, body: "\r\n"))
        #expect(framing.kind == "body", "\(framing)")
    }

    @Test("A local error (out of descriptors, buffers, ports) is not the origin's failure")
    func localErrors() {
        for code in [EMFILE, ENFILE, ENOBUFS, EADDRNOTAVAIL] {
            let r = ProbeRunner.errnoResult(code, phase: "connecting")
            #expect(r.kind == "local", "\(code): \(r)")
            guard case .local = r.outcome else {
                Issue.record("\(code): \(r.outcome)")
                continue
            }
            var state = CheckState(policy: CheckPolicy(), resumed: true, reason: "up")
            let before = state.up
            #expect(state.record(r.outcome, now: 1).isEmpty && state.up == before, "a local error changes nothing")
        }
        #expect(ProbeRunner.errnoResult(ECONNREFUSED, phase: "connecting").kind == "refused")
    }
}
