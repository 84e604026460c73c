import Foundation
import Logging
import NIOPosix
import Prober
import Steering
import Testing

/// Test origins (Tests/Origins/origin.py) on 127.0.0.1, stopped by pid.
final class Origins: @unchecked Sendable {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    let process = Process()
    let control: Int
    let certs: String

    /// `specs`: "PORT" for HTTP, "PORT:tls=good", "PORT:dns" — all on 127.0.0.1.
    init(_ specs: [String]) throws {
        certs = NSTemporaryDirectory() + "lodestar-certs-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: certs, withIntermediateDirectories: true)
        let mk = Process()
        mk.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        mk.arguments = ["python3", Origins.root + "/Tests/Origins/make_certs.py", certs]
        try mk.run()
        mk.waitUntilExit()
        control = Self.freePort()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Origins.root + "/Tests/Origins/origin.py", "--control", "\(control)", "--certs", certs,
                             "--lifetime", "300"] + specs.map { "127.0.0.1:\($0)" }
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if (try? get("/hits?origin=none")) != nil { return }
            usleep(50_000)
        }
        stop()
        throw ProbeTestFailure("origin.py did not start")
    }

    static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: a.sin_port))
    }

    /// A request to the control port through a plain socket; returns the body.
    func get(_ path: String) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var tv = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        a.sin_port = UInt16(control).bigEndian
        let ok = withUnsafePointer(to: &a) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard ok == 0 else { throw ProbeTestFailure("control port refused") }
        let req = Array("GET \(path) HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        _ = send(fd, req, req.count, 0)
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { break }
            out += buf[0..<n]
        }
        let text = String(decoding: out, as: UTF8.self)
        guard let r = text.range(of: "\r\n\r\n") else { throw ProbeTestFailure("bad control reply") }
        return String(text[r.upperBound...])
    }

    func mode(_ port: Int, _ mode: String) throws {
        _ = try get("/mode?origin=127.0.0.1:\(port)&mode=\(mode)")
    }

    func stop() {
        if process.isRunning {
            // SIGKILL: a child of the test runner may inherit SIGTERM blocked.
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: certs)
    }

    deinit { stop() }
}

struct ProbeTestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

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
        let ports = modes.map { _ in Origins.freePort() }
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
            "slow:300": ("ok", "ok"),
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
        let good = Origins.freePort(), expired = Origins.freePort()
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
        let port = Origins.freePort()
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
        try origins.mode(port, "hang")
        let (r, took) = try Self.run(s)
        #expect(Self.reason(r) == "timeout after 0.5 s waiting for the DNS reply" && took < 0.9)
        try origins.mode(port, "down")
        #expect(Self.reason(try Self.run(s).0) == "connection refused", "ICMP port unreachable on a connected socket")
    }
}
