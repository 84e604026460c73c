import Foundation
import Testing
import Zones

/// A seeded generator, so a failing run can be replayed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("Malformed packets")
struct RobustnessTests {
    static func packets(count: Int, seed: UInt64) -> [[UInt8]] {
        var rng = SplitMix64(state: seed)
        let valid = RawDNS.query(
            id: 1, name: "www.example.com", type: 1, opt: RawDNS.opt(options: [(8, [0, 1, 24, 0, 192, 0, 2])]))
        var out: [[UInt8]] = []
        for i in 0..<count {
            var p = valid
            switch i % 8 {
            case 0:  // random bytes
                p = (0..<Int.random(in: 0..<300, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            case 1:  // truncated anywhere, header included
                p = Array(p.prefix(Int.random(in: 0..<p.count, using: &rng)))
            case 2:  // bit flips
                for _ in 0..<Int.random(in: 1...8, using: &rng) {
                    let k = Int.random(in: 0..<p.count, using: &rng)
                    p[k] ^= UInt8(1) << UInt8.random(in: 0...7, using: &rng)
                }
            case 3:  // a compression pointer loop in the question or in the OPT owner
                p = Array(p.prefix(12)) + [0xC0, 0x0C, 0, 1, 0, 1]
                if Bool.random(using: &rng) {
                    p = RawDNS.query(id: 3, name: "a", type: 1) + [0xC0, 33, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0]
                    p[11] = 1
                }
            case 4:  // oversized labels and names
                p =
                    Array(p.prefix(12)) + [UInt8.random(in: 64...255, using: &rng)] + Array(repeating: 0x61, count: 70)
                    + [0, 0, 1, 0, 1]
                if Bool.random(using: &rng) {
                    p =
                        Array(valid.prefix(12))
                        + Array(repeating: [63] + Array(repeating: UInt8(0x62), count: 63), count: 5).flatMap { $0 } + [
                            0, 0, 1, 0, 1
                        ]
                }
            case 5:  // garbage after the question
                p += (0..<Int.random(in: 1..<50, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            case 6:  // lying counts
                p[4 + 2 * Int.random(in: 0...3, using: &rng) + 1] = UInt8.random(in: 0...255, using: &rng)
            default:  // a random slice spliced in
                let k = Int.random(in: 12..<p.count, using: &rng)
                p.insert(
                    contentsOf: (0..<Int.random(in: 1..<20, using: &rng)).map { _ in
                        UInt8.random(in: 0...255, using: &rng)
                    }, at: k)
            }
            if p.count >= 2 {
                p[0] = UInt8(i >> 8 & 0xFF)
                p[1] = UInt8(i & 0xFF)
            }
            out.append(p)
        }
        return out
    }

    @Test(
        "Thousands of random and mutated packets: every reply well-formed, answers still correct",
        .timeLimit(.minutes(2)))
    func fuzz() throws {
        let server = try LodestarProcess()
        defer { server.stop() }
        let packets = Self.packets(count: 6000, seed: 0x10de_57a2)
        let fd = RawDNS.udpSocket(port: server.port, timeout: 0.05)
        defer { close(fd) }
        var replies = 0
        var malformed: [String] = []
        var buf = [UInt8](repeating: 0, count: 65535)
        for (i, p) in packets.enumerated() {
            _ = p.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
            // Drain what has arrived; most malformed packets get FORMERR, some nothing at all.
            while true {
                let n = buf.withUnsafeMutableBytes {
                    recv(fd, $0.baseAddress, $0.count, Int32(i % 50 == 49 ? 0 : MSG_DONTWAIT))
                }
                if n <= 0 { break }
                replies += 1
                let reply = Array(buf[0..<n])
                if n < 12 || reply[2] & 0x80 == 0 || MessageText(reply) == nil {
                    malformed.append(reply.map { String(format: "%02x", $0) }.joined())
                }
            }
        }
        #expect(malformed.isEmpty, "replies that are not well-formed DNS responses: \(malformed.prefix(5))")
        #expect(replies > 1000, "FORMERR and answers came back (\(replies))")
        #expect(server.process.isRunning)
        let r = try server.dig("www.example.com", "A")
        #expect(r.answer == ["www.example.com. 3600 IN A 192.0.2.10", "www.example.com. 3600 IN A 192.0.2.11"])
        let t = try server.dig("+tcp", "chain1.example.com", "A")
        #expect(t.answer.count == 5)
    }

    @Test(
        "Malformed TCP streams: garbage, zero-length and truncated frames do not hurt others", .timeLimit(.minutes(1)))
    func tcpGarbage() throws {
        let server = try LodestarProcess()
        defer { server.stop() }
        for stream in [
            [UInt8](repeating: 0xFF, count: 5000), [0, 0, 0, 0, 0, 0], [0x10, 0x00, 1, 2, 3],
            RawDNS.framed(Array(RawDNS.query(id: 5, name: "www.example.com", type: 1).prefix(9)))
        ] {
            let fd = RawDNS.tcpConnect(port: server.port, timeout: 0.5)
            if fd >= 0 {
                _ = RawDNS.sendAll(fd, stream)
                _ = RawDNS.readFramed(fd)
                close(fd)
            }
        }
        #expect(try server.dig("+tcp", "www.example.com", "A").answer.count == 2)
        #expect(server.process.isRunning)
    }
}
