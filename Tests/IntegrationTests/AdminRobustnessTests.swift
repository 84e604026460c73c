import Foundation
import Testing

/// Bad requests to the admin API get an HTTP error; none of them stops the DNS server.
@Suite("Admin API under bad input", .serialized)
struct AdminRobustnessTests {
    /// (method, path, body): paths, escapes, query strings, bodies and methods that must each get a 4xx.
    static let requests: [(String, String, String?)] = [
        ("GET", "/v1/explain?name=a.&client=%2F", nil),  // trapped: an empty address indexed
        ("GET", "/v1/explain?name=%5C1.&client=192.0.2.1", nil),  // trapped: \1 sliced past the end
        ("GET", "/v1/explain?name=%5C99&client=192.0.2.1", nil),
        ("GET", "/v1/explain?name=%5C999.&client=192.0.2.1", nil),
        ("GET", "/v1/explain?name=a..b&client=192.0.2.1", nil),
        ("GET", "/v1/explain?name=" + String(repeating: "a", count: 300) + "&client=192.0.2.1", nil),
        ("GET", "/v1/explain?name=www.example.com&client=192.0.2.1/", nil),
        ("GET", "/v1/explain?name=www.example.com&client=192.0.2.1/99", nil),
        ("GET", "/v1/explain?name=www.example.com&client=/24", nil),
        ("GET", "/v1/explain?name=www.example.com&client=%00", nil),
        ("GET", "/v1/explain?name=www.example.com&client=192.0.2.1&type=NOPE", nil),
        ("GET", "/v1/explain?name=www.example.com&client=192.0.2.1&type=TYPE99999999", nil),
        ("GET", "/v1/explain?name&client", nil),
        ("GET", "/v1/explain?&&&=&=", nil),
        ("GET", "/v1/%2e%2e/%2e%2e/etc/passwd", nil),
        ("POST", "/v1/pools/na", "{\"state\": 5}"),
        ("POST", "/v1/pools/na", "{\"weight\": -1}"),
        ("POST", "/v1/pools/na", "{\"weight\": 1e400}"),
        ("POST", "/v1/endpoints/na-1", "{\"weight\": true}"),
        ("POST", "/v1/pools/na", "{\"weight\": false}"),
        ("POST", "/v1/pools/na", "[1, 2]"),
        ("POST", "/v1/pools/na", "{"),
        ("POST", "/v1/pools/%00", "{\"state\": \"down\"}"),
        ("POST", "/v1/health/na-1", "{\"state\": \"down\", \"ttl\": -5}"),
        ("POST", "/v1/health/na-1", "{\"state\": \"down\", \"ttl\": \"x\"}"),
        ("POST", "/v1/anycast/x", "{\"state\": \"withdraw\"}"),
        // Two values for one key: JSONDecoder would keep the first without a word.
        ("POST", "/v1/pools/na", "{\"state\": \"drain\", \"state\": \"up\"}"),
        ("POST", "/v1/endpoints/na-1", "{\"weight\": 5, \"\\u0077eight\": \"x\"}"),
        ("POST", "/v1/health/na-1", "{\"state\": \"down\", \"ttl\": 0.5}"),
        ("POST", "/v1/reload", "{\"force\": true}"),
        ("POST", "/v1/pools/%zz", "{\"state\": \"down\"}"),
        ("DELETE", "/v1/state", nil),
        ("PUT", "/v1/reload", "x")
    ]

    @Test("each malformed request gets a 4xx; DNS, /metrics and the process stay up", .timeLimit(.minutes(2)))
    func malformed() throws {
        let setup = try GSLBSetup()
        defer { setup.remove() }
        let server = try setup.start()
        defer { server.stop() }
        for (method, path, body) in Self.requests {
            let code = try setup.admin(method, path, body, status: true)
            #expect(code.hasPrefix("4"), "\(method) \(path) \(body ?? ""): HTTP \(code)")
        }
        // Malformed HTTP itself, raw on the socket: garbage, a huge header, a request line without a version.
        for raw in [
            "\u{0}\u{1}\u{2}garbage\r\n\r\n",
            "GET / HTTP/1.1\r\nX: " + String(repeating: "y", count: 100_000) + "\r\n\r\n",
            "GET /metrics\r\n\r\n", "POST /v1/reload HTTP/1.1\r\nContent-Length: -1\r\n\r\n"
        ] {
            _ = try? Command.run(
                "/usr/bin/env",
                [
                    "python3", "-c",
                    """
                    import socket,sys
                    s=socket.create_connection(("127.0.0.1",\(setup.adminPort)),timeout=3)
                    s.sendall(sys.argv[1].encode("latin-1"))
                    try: s.recv(4096)
                    except Exception: pass
                    s.close()
                    """, raw
                ], timeout: 10)
        }
        #expect(server.process.isRunning, "the server is still running: \(server.log().suffix(2000))")
        #expect(try server.dig("www.example.com", "A", "+subnet=198.51.100.0/24").status == "NOERROR")
        #expect(try setup.admin("GET", "/metrics", status: true) == "200")
        #expect(try setup.admin("GET", "/v1/explain?name=www.example.com&client=198.51.100.7", status: true) == "200")
    }
}
