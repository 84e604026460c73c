import Foundation
import OriginSupport
import Testing

/// Response rate limiting and DNS cookies against the real binary.
@Suite("Rate limiting and cookies", .serialized)
struct RateLimitTests {
    /// A config with `body` and the admin API on a free port.
    static func config(_ body: String) throws -> (dir: String, path: String, admin: Int) {
        let dir = try Paths.temporaryDirectory()
        let path = dir + "/lodestar.yaml"
        let admin = FreePort.pick()
        try (body + "admin: { listen: \"127.0.0.1:\(admin)\" }\n").write(
            toFile: path, atomically: true, encoding: .utf8)
        return (dir, path, admin)
    }

    static func metrics(_ port: Int) throws -> String {
        try Command.run("/usr/bin/curl", ["-s", "--max-time", "5", "http://127.0.0.1:\(port)/metrics"]).output
    }

    @Test(
        "Floods from several /24s: limited per prefix within bands, TC and BADCOOKIE slips, cookie holders and other prefixes unaffected",
        .timeLimit(.minutes(2)))
    func floods() throws {
        let (dir, path, admin) = try Self.config("rate-limit: { responses-per-second: 100, burst: 100, slip: 2 }\n")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try LodestarProcess(config: path, rateLimit: true)
        defer { server.stop() }
        let r = try Command.run(
            "/usr/bin/env",
            [
                "python3", Paths.packageRoot + "/Tests/Abuse/rrl_flood.py",
                "\(server.port)", "100", "100", "2"
            ], timeout: 60)
        #expect(r.status == 0, "\(r.output)")
        let metrics = try Self.metrics(admin)
        let slipped = metrics.split(separator: "\n").first {
            $0.hasPrefix("lodestar_rate_limited_total{action=\"slipped\"}")
        }
        #expect((slipped.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0) > 100, "\(metrics)")
        #expect(
            server.log().contains("rate limit: responses to 127.0.1.0/24 over 100/s"), "\(server.log().suffix(2000))")
        #expect(server.process.isRunning)
    }

    @Test("log-only counts and logs but answers everything; exempt sources are never limited", .timeLimit(.minutes(2)))
    func logOnlyAndExempt() throws {
        for (body, what) in [
            ("rate-limit: { responses-per-second: 20, burst: 20, log-only: true }\n", "log-only"),
            ("rate-limit: { responses-per-second: 20, burst: 20, exempt: [127.0.3.0/24] }\n", "exempt")
        ] {
            let (dir, path, admin) = try Self.config(body)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let server = try LodestarProcess(config: path, rateLimit: true)
            defer { server.stop() }
            let r = try Command.run(
                "/usr/bin/env",
                [
                    "python3", "-c",
                    """
                    import socket,struct
                    s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM); s.bind(("127.0.3.1",0)); s.settimeout(1)
                    q=lambda i: struct.pack("!HHHHHH",i,0,1,0,0,0)+b"\\x07example\\x03com\\x00"+struct.pack("!HH",6,1)
                    n=0
                    for i in range(300):
                        s.sendto(q(i),("127.0.0.1",\(server.port)))
                        try:
                            r=s.recv(4096)
                            if not r[2]&2 and r[7]>0: n+=1
                        except socket.timeout: pass
                    print(n)
                    """
                ], timeout: 60)
            #expect(r.output.trimmingCharacters(in: .whitespacesAndNewlines) == "300", "\(what): \(r.output)")
            let metrics = try Self.metrics(admin)
            let label = what == "log-only" ? "log-only" : "exempt"
            let line = metrics.split(separator: "\n").first {
                $0.hasPrefix("lodestar_rate_limited_total{action=\"\(label)\"}")
            }
            let count = line.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
            #expect(count >= 250, "\(what): \(line ?? "no line")")
        }
    }

    @Test("dig +cookie and kdig +cookie get a server cookie, and it is good when sent back")
    func cookiesWithDigAndKdig() throws {
        let server = try LodestarProcess(rateLimit: true)
        defer { server.stop() }
        let first = try Command.run(
            "/usr/bin/dig", ["@127.0.0.1", "-p", "\(server.port)", "+cookie", "example.com", "SOA"]
        ).output
        let line = try #require(first.split(separator: "\n").first { $0.contains("; COOKIE:") }, "\(first)")
        #expect(line.contains("(good)"), "\(line)")
        let cookie = String(line.split(separator: " ")[2])
        #expect(cookie.count == 48, "client 8 + server 16 octets: \(cookie)")
        let again = try Command.run(
            "/usr/bin/dig", ["@127.0.0.1", "-p", "\(server.port)", "+cookie=\(cookie)", "example.com", "SOA"]
        ).output
        #expect(again.contains("status: NOERROR") && again.contains("(good)"), "\(again)")
        // A query for the server cookie alone (no question, RFC 7873 §5.4).
        let headerOnly = try Command.run(
            "/usr/bin/dig", ["@127.0.0.1", "-p", "\(server.port)", "+cookie", "+header-only"]
        ).output
        #expect(headerOnly.contains("status: NOERROR") && headerOnly.contains("(good)"), "\(headerOnly)")
        // A malformed cookie (3 octets) is FORMERR.
        let bad = try Command.run(
            "/usr/bin/dig", ["@127.0.0.1", "-p", "\(server.port)", "+cookie=010203", "example.com", "SOA"]
        ).output
        #expect(bad.contains("status: FORMERR"), "\(bad)")
        let kdig = try Command.run(
            "/usr/bin/kdig", ["@127.0.0.1", "-p", "\(server.port)", "+cookie", "example.com", "SOA"]
        ).output
        let kline = try #require(kdig.split(separator: "\n").first { $0.contains("COOKIE:") }, "\(kdig)")
        #expect(kdig.contains("NOERROR") && kline.split(separator: " ").last?.count == 48, "\(kdig)")
        let kagain = try Command.run(
            "/usr/bin/kdig",
            [
                "@127.0.0.1", "-p", "\(server.port)", "+cookie=\(kline.split(separator: " ").last!)",
                "example.com", "SOA"
            ]
        ).output
        #expect(kagain.contains("NOERROR") && !kagain.contains("BADCOOKIE"), "\(kagain)")
    }

    @Test("cookies: { enabled: false } ignores the option, as a server without cookies does")
    func cookiesOff() throws {
        let (dir, path, _) = try Self.config("cookies: { enabled: false }\n")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try LodestarProcess(config: path, rateLimit: true)
        defer { server.stop() }
        let out = try Command.run(
            "/usr/bin/dig", ["@127.0.0.1", "-p", "\(server.port)", "+cookie", "example.com", "SOA"]
        ).output
        #expect(out.contains("status: NOERROR") && !out.contains("; COOKIE:"), "\(out)")
        let headerOnly = try Command.run(
            "/usr/bin/dig", ["@127.0.0.1", "-p", "\(server.port)", "+cookie", "+header-only"]
        ).output
        #expect(headerOnly.contains("status: FORMERR"), "\(headerOnly)")
    }
}
