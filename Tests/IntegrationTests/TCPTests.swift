import Foundation
import Testing

@Suite("DNS over TCP (RFC 7766) against the real binary")
struct TCPTests {
    static func config(_ dir: String, _ body: String) throws -> String {
        let path = dir + "/lodestar.yaml"
        try body.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("Many pipelined queries on one connection are all answered, in order", .timeLimit(.minutes(1)))
    func pipelined() throws {
        let server = try LodestarProcess()
        defer { server.stop() }
        let fd = RawDNS.tcpConnect(port: server.port)
        try #require(fd >= 0)
        defer { close(fd) }
        var burst: [UInt8] = []
        for i in 0..<100 {
            burst += RawDNS.framed(
                RawDNS.query(id: UInt16(i), name: i % 2 == 0 ? "www.example.com" : "nx.example.com", type: 1))
        }
        #expect(RawDNS.sendAll(fd, burst))  // all 100 in one write
        for i in 0..<100 {
            let reply = try #require(RawDNS.readFramed(fd), "reply \(i)")
            #expect(RawDNS.id(reply) == UInt16(i))
            #expect(RawDNS.rcode(reply) == (i % 2 == 0 ? 0 : 3))
        }
    }

    @Test("An idle connection is closed after the configured timeout", .timeLimit(.minutes(1)))
    func idleTimeout() throws {
        let dir = try Paths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try LodestarProcess(config: try Self.config(dir, "server:\n  tcp-idle-timeout: 1\n"))
        defer { server.stop() }
        let fd = RawDNS.tcpConnect(port: server.port, timeout: 5)
        try #require(fd >= 0)
        defer { close(fd) }
        let start = Date()
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, 0)  // blocks until the server closes
        let waited = Date().timeIntervalSince(start)
        #expect(n == 0, "the server closed the connection")
        #expect(waited >= 0.8 && waited < 4, "closed after \(waited) s")
    }

    @Test("Connections beyond the bound are closed; the ones inside keep working", .timeLimit(.minutes(1)))
    func connectionBound() throws {
        let dir = try Paths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let server = try LodestarProcess(config: try Self.config(dir, "server:\n  tcp-max-connections: 2\n"))
        defer { server.stop() }
        // The readiness probe's connections must be gone before we count.
        usleep(300_000)
        let a = RawDNS.tcpConnect(port: server.port)
        let b = RawDNS.tcpConnect(port: server.port)
        defer {
            close(a)
            close(b)
        }
        usleep(200_000)
        let c = RawDNS.tcpConnect(port: server.port)
        defer { if c >= 0 { close(c) } }
        if c >= 0 {
            _ = RawDNS.sendAll(c, RawDNS.framed(RawDNS.query(id: 9, name: "www.example.com", type: 1)))
            #expect(RawDNS.readFramed(c) == nil, "the third connection gets no answer")
        }
        for fd in [a, b] {
            #expect(RawDNS.sendAll(fd, RawDNS.framed(RawDNS.query(id: 1, name: "www.example.com", type: 1))))
            #expect(RawDNS.readFramed(fd).map(RawDNS.rcode) == 0)
        }
    }

    @Test("A client that never reads its answers does not stall other clients", .timeLimit(.minutes(1)))
    func slowClient() throws {
        let server = try LodestarProcess()
        defer { server.stop() }
        let slow = RawDNS.tcpConnect(port: server.port)
        try #require(slow >= 0)
        defer { close(slow) }
        // Ask for ~2 KiB answers 5,000 times and never read: the server must stop reading this client.
        var burst: [UInt8] = []
        for i in 0..<500 { burst += RawDNS.framed(RawDNS.query(id: UInt16(i), name: "bigtxt.example.com", type: 16)) }
        var flags = fcntl(slow, F_GETFL)
        flags |= O_NONBLOCK
        _ = fcntl(slow, F_SETFL, flags)
        for _ in 0..<10 { _ = burst.withUnsafeBytes { send(slow, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } }
        // Meanwhile others are answered promptly over TCP and UDP.
        for i in 0..<20 {
            let start = Date()
            let r = try server.dig(i % 2 == 0 ? "+tcp" : "+notcp", "www.example.com", "A")
            #expect(r.status == "NOERROR" && r.answer.count == 2)
            #expect(Date().timeIntervalSince(start) < 2)
        }
    }
}
