import Foundation
import OriginSupport
import Testing

/// PROXY protocol v2 behind a real dnsdist (`useProxyProtocol=true`), and raw headers from allowed
/// and other peers.
@Suite(
    "PROXY protocol v2", .serialized,
    .enabled(
        if: FileManager.default.isExecutableFile(atPath: "/usr/bin/dnsdist"), "needs dnsdist (install-deps --test)"))
struct ProxyProtocolTests {
    /// www.example.com steered by source address: 127.0.0.2 → eu (198.51.100.11), else na (192.0.2.11).
    static func config(dir: String, port: Int, allow: String) throws -> String {
        try FileManager.default.createDirectory(atPath: dir + "/zones", withIntermediateDirectories: true)
        try FileManager.default.copyItem(
            atPath: Paths.packageRoot + "/zones/example.com.zone", toPath: dir + "/zones/example.com.zone")
        let path = dir + "/lodestar.yaml"
        try """
        server:
          zones: zones
        regions:
          us-east: {}
          eu-central: {}
        pools:
          na: { region: us-east, endpoints: [{ name: na-1, address: 192.0.2.11 }] }
          eu: { region: eu-central, endpoints: [{ name: eu-1, address: 198.51.100.11 }] }
        names:
          www.example.com:
            policy: [geo, failover]
            pools: [na, eu]
            ttl: 30
            geo:
              nets: { 127.0.0.2/32: [eu-central], "2001:db8::2/128": [eu-central] }
              default: [us-east]
        transfer:
          allow: ["127.0.0.2/32"]
        proxy-protocol:
          allow: [\(allow)]
        rate-limit:
          responses-per-second: 5
          burst: 5
          slip: 0
          ipv4-prefix: 32

        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// A PROXY v2 header: PROXY (or LOCAL) from `source` to 127.0.0.1:53 over UDP or TCP.
    static func header(source: [UInt8], udp: Bool, local: Bool = false, tlv: [UInt8] = []) -> [UInt8] {
        var h: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
        h.append(local ? 0x20 : 0x21)
        let v6 = source.count == 16
        h.append((v6 ? 0x20 : 0x10) | (udp ? 0x02 : 0x01))
        let dest: [UInt8] = v6 ? [UInt8](repeating: 0, count: 15) + [1] : [127, 0, 0, 1]
        let body = source + dest + [0x30, 0x39, 0x00, 0x35] + tlv
        h += [UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
        return h
    }

    /// A UDP or TCP socket bound to `from` (a loopback address) and connected to 127.0.0.1:`port`;
    /// -1 when the connection fails. The caller closes it.
    static func socket(from: String, port: Int, type: __socket_type, timeout: Double) -> Int32 {
        let fd = Glibc.socket(AF_INET, Int32(type.rawValue), 0)
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        local.sin_addr.s_addr = inet_addr(from)
        _ = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        var a = RawDNS.sockaddr4(port)
        let ok = withUnsafePointer(to: &a) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard ok == 0 else {
            close(fd)
            return -1
        }
        RawDNS.setTimeout(fd, timeout)
        return fd
    }

    /// One datagram from `from` (a loopback address), its reply or nil after `timeout`.
    static func udp(_ packet: [UInt8], from: String, port: Int, timeout: Double = 0.5) -> [UInt8]? {
        let fd = socket(from: from, port: port, type: SOCK_DGRAM, timeout: timeout)
        defer { close(fd) }
        _ = packet.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var buf = [UInt8](repeating: 0, count: 4096)
        let n = recv(fd, &buf, buf.count, 0)
        return n > 0 ? Array(buf[0..<n]) : nil
    }

    /// The A record's address at the end of a response with one answer and no additional section.
    static func address(_ m: [UInt8]?) -> String? {
        guard let m, m.count > 16, RawDNS.ancount(m) == 1 else { return nil }
        return m.suffix(4).map(String.init).joined(separator: ".")
    }

    static let query = RawDNS.query(id: 0x4242, name: "www.example.com", type: 1)

    @Test(
        "raw headers: the header's source is the client; an allowed peer without a header, or a header from anyone else, is dropped",
        .timeLimit(.minutes(1)))
    func rawHeaders() throws {
        let dir = try Paths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = try Self.config(dir: dir, port: 0, allow: "127.0.0.9/32")
        // The harness's own SOA probes come from 127.0.0.1, not a PROXY peer.
        let server = try LodestarProcess(zones: dir + "/zones", config: config, rateLimit: true)
        defer { server.stop() }
        let p = server.port
        #expect(
            Self.address(Self.udp(Self.query, from: "127.0.0.2", port: p)) == "198.51.100.11",
            "no PROXY: the source itself")
        // From the allowed peer 127.0.0.9: the header decides.
        #expect(
            Self.address(
                Self.udp(Self.header(source: [127, 0, 0, 2], udp: true) + Self.query, from: "127.0.0.9", port: p))
                == "198.51.100.11")
        #expect(
            Self.address(
                Self.udp(Self.header(source: [127, 0, 0, 7], udp: true) + Self.query, from: "127.0.0.9", port: p))
                == "192.0.2.11")
        let v6: [UInt8] = [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 11) + [2]  // 2001:db8::2
        #expect(
            Self.address(Self.udp(Self.header(source: v6, udp: true) + Self.query, from: "127.0.0.9", port: p))
                == "198.51.100.11",
            "an IPv6 client in the header")
        #expect(
            Self.address(
                Self.udp(
                    Self.header(source: [127, 0, 0, 2], udp: true, tlv: [0x04, 0x00, 0x02, 0xAB, 0xCD]) + Self.query,
                    from: "127.0.0.9", port: p)) == "198.51.100.11", "TLVs skipped")
        #expect(
            Self.address(
                Self.udp(
                    Self.header(source: [127, 0, 0, 2], udp: true, local: true) + Self.query, from: "127.0.0.9", port: p
                ))
                == "192.0.2.11", "LOCAL: the peer is the client")
        #expect(Self.udp(Self.query, from: "127.0.0.9", port: p) == nil, "an allowed peer without a header: dropped")
        var truncated = Self.header(source: [127, 0, 0, 2], udp: true)
        truncated[15] = 200
        #expect(
            Self.udp(truncated + Self.query, from: "127.0.0.9", port: p) == nil,
            "a header longer than the datagram: dropped")
        // From anyone else, a header is refused (dropped): it would choose its own source address.
        #expect(
            Self.udp(Self.header(source: [127, 0, 0, 2], udp: true) + Self.query, from: "127.0.0.3", port: p) == nil)
        // TCP: the header first, then framed queries; an allowed peer without one is closed.
        func tcp(from: String, _ bytes: [UInt8]) -> [UInt8]? {
            let fd = Self.socket(from: from, port: p, type: SOCK_STREAM, timeout: 1)
            guard fd >= 0 else { return nil }
            defer { close(fd) }
            // The header in two writes: a header split across reads is reassembled.
            _ = RawDNS.sendAll(fd, Array(bytes.prefix(7)))
            usleep(50_000)
            _ = RawDNS.sendAll(fd, Array(bytes.dropFirst(7)))
            return RawDNS.readFramed(fd)
        }
        #expect(
            Self.address(
                tcp(from: "127.0.0.9", Self.header(source: [127, 0, 0, 2], udp: false) + RawDNS.framed(Self.query)))
                == "198.51.100.11")
        #expect(tcp(from: "127.0.0.9", RawDNS.framed(Self.query)) == nil, "allowed peer, no header: closed")
        #expect(
            tcp(from: "127.0.0.3", Self.header(source: [127, 0, 0, 2], udp: false) + RawDNS.framed(Self.query)) == nil,
            "a header from a peer not allowed: closed")
        #expect(
            Self.address(tcp(from: "127.0.0.3", RawDNS.framed(Self.query))) == "192.0.2.11",
            "plain TCP from others still works")
        #expect(server.process.isRunning)
    }

    @Test(
        "behind dnsdist (useProxyProtocol=true): steering, transfer ACL and rate limiting see the original client, UDP and TCP",
        .timeLimit(.minutes(2)))
    func behindDnsdist() throws {
        let dir = try Paths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // dnsdist talks to lodestar from 127.0.0.9 (its `source`): the harness's own probes, from
        // 127.0.0.1, carry no header.
        let config = try Self.config(dir: dir, port: 0, allow: "127.0.0.9/32")
        let server = try LodestarProcess(zones: dir + "/zones", config: config, rateLimit: true)
        defer { server.stop() }
        let front = FreePort.pick()
        try """
        setSecurityPollSuffix("")
        setLocal("127.0.0.1:\(front)")
        addACL("127.0.0.0/8")
        newServer({address="127.0.0.1:\(server.port)", source="127.0.0.9", useProxyProtocol=true, checkName="example.com.", checkType="SOA", checkInterval=1})

        """.write(toFile: dir + "/dnsdist.conf", atomically: true, encoding: .utf8)
        let dnsdist = Process()
        dnsdist.executableURL = URL(fileURLWithPath: "/usr/bin/dnsdist")
        dnsdist.arguments = ["--supervised", "--disable-syslog", "-C", dir + "/dnsdist.conf"]
        let log = dir + "/dnsdist.log"
        FileManager.default.createFile(atPath: log, contents: nil)
        dnsdist.standardOutput = FileHandle(forWritingAtPath: log)
        dnsdist.standardError = FileHandle(forWritingAtPath: log)
        try dnsdist.run()
        defer {
            kill(dnsdist.processIdentifier, SIGTERM)
            let deadline = Date().addingTimeInterval(5)
            while dnsdist.isRunning && Date() < deadline { usleep(20_000) }
            if dnsdist.isRunning { kill(dnsdist.processIdentifier, SIGKILL) }
            dnsdist.waitUntilExit()
        }
        func dig(_ from: String, _ args: String...) throws -> DigResult {
            DigResult(
                try Command.run(
                    "/usr/bin/dig",
                    ["@127.0.0.1", "-p", "\(front)", "-b", from, "+norec", "+tries=1", "+time=2"] + args,
                    timeout: 10
                ).output)
        }
        let up = try Poll.seconds(limit: 10, every: 0.2) {
            try dig("127.0.0.5", "example.com", "SOA").status == "NOERROR"
        }
        try #require(
            up != nil, "dnsdist forwards: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")\n\(server.log())"
        )
        for transport in ["+notcp", "+tcp"] {
            #expect(
                try dig("127.0.0.2", "www.example.com", "A", transport).addresses == ["198.51.100.11"],
                "127.0.0.2 \(transport)")
            #expect(
                try dig("127.0.0.3", "www.example.com", "A", transport).addresses == ["192.0.2.11"],
                "127.0.0.3 \(transport)")
            #expect(
                try dig("127.0.0.4", "www.example.com", "A", transport).addresses == ["192.0.2.11"],
                "127.0.0.4 \(transport)")
        }
        // The transfer ACL sees the client: 127.0.0.2 may, 127.0.0.3 may not.
        let axfr = try Command.run(
            "/usr/bin/dig",
            ["@127.0.0.1", "-p", "\(front)", "-b", "127.0.0.2", "example.com", "AXFR", "+time=3", "+tries=1"],
            timeout: 10)
        #expect(
            axfr.output.contains("example.com.\t\t3600\tIN\tSOA") || axfr.output.contains("IN\tSOA"), "\(axfr.output)")
        let refused = try dig("127.0.0.3", "example.com", "AXFR")
        #expect(!refused.raw.contains("IN\tSOA"), "\(refused.raw)")
        // Rate limiting per original client (/32 here): 127.0.0.6 is limited, 127.0.0.7 is not.
        let fd = Self.socket(from: "127.0.0.6", port: front, type: SOCK_DGRAM, timeout: 1.5)
        defer { close(fd) }
        for i in 0..<40 {
            let q = RawDNS.query(id: UInt16(i), name: "www.example.com", type: 1)
            _ = q.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        }
        var answered = 0
        var buf = [UInt8](repeating: 0, count: 4096)
        while recv(fd, &buf, buf.count, 0) > 0 { answered += 1 }
        #expect(answered >= 5 && answered <= 20, "127.0.0.6 limited to its burst and rate: \(answered) of 40 answered")
        #expect(
            try dig("127.0.0.7", "www.example.com", "A").status == "NOERROR",
            "another client behind the same proxy is not")
        #expect(server.log().contains("rate limit: responses to 127.0.0.6/32"), "\(server.log())")
    }
}
