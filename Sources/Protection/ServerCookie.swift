import CLodestarSys
public import DNSWire
import Glibc

/// The server secret of DNS cookies: 16 octets, the SipHash-2-4 key (RFC 9018 §4.4). Every node
/// of an anycast group shares one so that a cookie from one is valid at the others.
public struct CookieSecret: Sendable, Equatable {
    public var k0: UInt64
    public var k1: UInt64

    public init(k0: UInt64, k1: UInt64) {
        self.k0 = k0
        self.k1 = k1
    }

    /// From 32 hexadecimal digits; nil for anything else.
    public init?(hex: String) {
        let digits = Array(hex.utf8)
        // Hex digits only: UInt8(_:radix:) alone takes "+1" as a pair.
        guard digits.count == 32,
            digits.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x66) })
        else { return nil }
        var bytes: [UInt8] = []
        for i in stride(from: 0, to: 32, by: 2) {
            guard let b = UInt8(String(decoding: digits[i..<(i + 2)], as: UTF8.self), radix: 16) else { return nil }
            bytes.append(b)
        }
        var a: UInt64 = 0
        var b: UInt64 = 0
        for i in 0..<8 { a |= UInt64(bytes[i]) << (8 * UInt64(i)) }
        for i in 0..<8 { b |= UInt64(bytes[8 + i]) << (8 * UInt64(i)) }
        self.init(k0: a, k1: b)
    }

    /// 16 random octets from the kernel.
    public static func random() -> CookieSecret {
        var words: (UInt64, UInt64) = (0, 0)
        let rc = withUnsafeMutableBytes(of: &words) { lodestar_random($0.baseAddress, 16) }
        precondition(rc == 0, "getrandom failed")  // Linux ≥ 3.17 always has it; no secret without it
        return CookieSecret(k0: words.0, k1: words.1)
    }
}

/// Interoperable server cookies (RFC 9018): version 1, three reserved octets, a 32-bit Unix time
/// and SipHash-2-4 over the client cookie, those eight octets and the client's address.
public enum ServerCookie {
    /// Octets of the server cookie we make.
    public static let length = 16
    /// RFC 9018 §4.3: a cookie is valid for an hour, and up to five minutes ahead of our clock.
    static let lifetime: Int32 = 3600
    static let skew: Int32 = 300

    /// The wall clock in seconds (serial number arithmetic on 32 bits, RFC 9018 §4.3).
    @inline(__always)
    public static func now() -> UInt32 { UInt32(truncatingIfNeeded: time(nil)) }

    /// Writes the 16-octet server cookie for `clientCookie` (8 octets) and `client` at `out`.
    public static func make(
        clientCookie: UnsafeRawPointer, client: ClientAddress, time: UInt32, secret: CookieSecret,
        into out: UnsafeMutableRawPointer
    ) {
        out.storeBytes(of: UInt32(0x0100_0000).bigEndian, as: UInt32.self)  // version 1, reserved 0
        out.storeBytes(of: time.bigEndian, toByteOffset: 4, as: UInt32.self)
        let h = hash(clientCookie: clientCookie, head: out, client: client, secret: secret)
        out.storeBytes(of: h, toByteOffset: 8, as: UInt64.self)  // SipHash's little-endian output
    }

    /// Whether the COOKIE option data `cookie` (client cookie, then server cookie) holds a server
    /// cookie we made for this client cookie and `client` within its lifetime.
    public static func isValid(
        _ cookie: UnsafeRawBufferPointer, client: ClientAddress, now: UInt32,
        secret: CookieSecret
    ) -> Bool {
        guard cookie.count == 8 + length, let base = cookie.baseAddress else { return false }
        let server = base + 8
        guard server.load(as: UInt8.self) == 1 else { return false }
        let stamp = UInt32(bigEndian: server.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        let age = Int32(bitPattern: now &- stamp)
        guard age <= lifetime && age >= -skew else { return false }
        let h = hash(clientCookie: base, head: server, client: client, secret: secret)
        return h == server.loadUnaligned(fromByteOffset: 8, as: UInt64.self)
    }

    /// SipHash-2-4 of client cookie (8) | version, reserved, timestamp (8) | address (4 or 16).
    static func hash(
        clientCookie: UnsafeRawPointer, head: UnsafeRawPointer, client: ClientAddress,
        secret: CookieSecret
    ) -> UInt64 {
        var input: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
        return withUnsafeMutableBytes(of: &input) { buf in
            let p = buf.baseAddress!
            p.copyMemory(from: clientCookie, byteCount: 8)
            (p + 8).copyMemory(from: head, byteCount: 8)
            p.storeBytes(of: client.octets.0.bigEndian, toByteOffset: 16, as: UInt64.self)
            p.storeBytes(of: client.octets.1.bigEndian, toByteOffset: 24, as: UInt64.self)
            let n = 16 + (client.family == 4 ? 4 : client.family == 6 ? 16 : 0)
            var key = secret
            return withUnsafeBytes(of: &key) { k in
                lodestar_siphash24(
                    k.baseAddress!.assumingMemoryBound(to: UInt8.self), p.assumingMemoryBound(to: UInt8.self), n)
            }
        }
    }
}
