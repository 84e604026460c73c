import CLodestarSys
import DNSWire
import Protection
import Testing

/// DNS cookies (RFC 7873, RFC 9018) and the rate limiter's table.
@Suite struct ProtectionTests {
    @Test("SipHash-2-4 gives the reference vector (key 00..0f, message 00..0e)")
    func siphashVector() {
        let key = (0..<16).map { UInt8($0) }
        let message = (0..<15).map { UInt8($0) }
        #expect(lodestar_siphash24(key, message, message.count) == 0xA129_CA61_49BE_45E5)
        #expect(lodestar_siphash24(key, [], 0) == 0x726F_DB47_DD0E_0E31)
    }

    static func query(cookie: [UInt8]?, qdcount: UInt16 = 1, extraOption: [UInt8] = []) -> [UInt8] {
        var p: [UInt8] = [0x12, 0x34, 0, 0, 0, UInt8(qdcount), 0, 0, 0, 0, 0, 1]
        if qdcount == 1 { p += [7] + Array("example".utf8) + [3] + Array("com".utf8) + [0, 0, 6, 0, 1] }
        var options = extraOption
        if let cookie { options += [0, 10, 0, UInt8(cookie.count)] + cookie }
        p += [0, 0, 41, 4, 0xD0, 0, 0, 0, 0, 0, UInt8(options.count)] + options
        return p
    }

    @Test(
        "COOKIE option lengths: 8 and 16–40 parse, anything else is FORMERR (RFC 7873 §5.2.2)",
        arguments: [0, 1, 7, 8, 9, 15, 16, 24, 40, 41])
    func cookieLengths(length: Int) {
        let p = Self.query(cookie: Array(repeating: 0xAB, count: length))
        var q = Query()
        let status = p.withUnsafeBytes { QueryParser.parse($0, into: &q) }
        if length == 8 || (16...40).contains(length) {
            #expect(status == .query)
            #expect(q.hasCookie && Int(q.cookieLength) == length && Int(q.cookieAt) == p.count - length)
        } else {
            #expect(status == .error(rcode: Rcode.formErr, questionParsed: true))
        }
    }

    @Test("A query with no question and a COOKIE asks for a server cookie (RFC 7873 §5.4); without one it is FORMERR")
    func cookieOnlyQuery() {
        var q = Query()
        #expect(
            Self.query(cookie: Array(repeating: 1, count: 8), qdcount: 0).withUnsafeBytes {
                QueryParser.parse($0, into: &q)
            }
                == .error(rcode: Rcode.noError, questionParsed: false))
        var q2 = Query()
        #expect(
            Self.query(cookie: nil, qdcount: 0, extraOption: [0, 3, 0, 0]).withUnsafeBytes {
                QueryParser.parse($0, into: &q2)
            }
                == .error(rcode: Rcode.formErr, questionParsed: false))
        #expect(q2.hasEDNS && !q2.nsidRequested, "the OPT is echoed on FORMERR, its options are not")
    }

    @Test("A server cookie is valid for its client cookie, client address and an hour; not for another")
    func serverCookie() {
        let secret = CookieSecret(hex: "000102030405060708090a0b0c0d0e0f")!
        let client = ClientAddress(bytes: [192, 0, 2, 1])
        let cc: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8]
        let now: UInt32 = 1_800_000_000
        var server = [UInt8](repeating: 0, count: 16)
        cc.withUnsafeBytes { c in
            server.withUnsafeMutableBytes {
                ServerCookie.make(
                    clientCookie: c.baseAddress!, client: client, time: now, secret: secret, into: $0.baseAddress!)
            }
        }
        #expect(server[0] == 1 && server[1...3] == [0, 0, 0], "version 1, reserved 0 (RFC 9018 §4.2)")
        func valid(_ option: [UInt8], _ who: ClientAddress = client, at t: UInt32 = now, _ s: CookieSecret = secret)
            -> Bool
        {
            option.withUnsafeBytes { ServerCookie.isValid($0, client: who, now: t, secret: s) }
        }
        #expect(valid(cc + server))
        #expect(valid(cc + server, at: now + 3600))
        #expect(!valid(cc + server, at: now + 3601), "older than an hour")
        #expect(valid(cc + server, at: now - 300))
        #expect(!valid(cc + server, at: now - 301), "more than five minutes ahead")
        #expect(!valid(cc + server, ClientAddress(bytes: [192, 0, 2, 2])), "another client address")
        #expect(!valid([9] + cc.dropFirst() + server), "another client cookie")
        #expect(!valid(cc + server, at: now, CookieSecret(k0: 1, k1: 2)), "another secret")
        var flipped = server
        flipped[15] ^= 1
        #expect(!valid(cc + flipped))
        #expect(!valid(cc + server.prefix(8)), "a server cookie of another length is not ours")
        #expect(CookieSecret(hex: "00") == nil && CookieSecret(hex: String(repeating: "g", count: 32)) == nil)
    }

    @Test("The limiter admits burst + rate × time per prefix, and other prefixes separately")
    func limiter() {
        var settings = RateLimitSettings()
        settings.responsesPerSecond = 100
        settings.burst = 50
        let p = RateLimiter.Parameters(settings)
        let limiter = RateLimiter(slots: 1 << 10)
        let a = ClientAddress(bytes: [198, 51, 100, 1])
        let a2 = ClientAddress(bytes: [198, 51, 100, 200])
        let b = ClientAddress(bytes: [198, 51, 101, 1])
        var t: UInt64 = 1_000_000_000
        var admitted = 0
        for _ in 0..<200 where limiter.admit(a, now: t, p) { admitted += 1 }
        #expect(admitted == 50, "the burst at once")
        #expect(!limiter.admit(a2, now: t, p), "the same /24 shares the bucket")
        #expect(limiter.admit(b, now: t, p), "another /24 has its own")
        // One second later, 100 more (a response per 10 ms).
        t += 1_000_000_000
        admitted = 0
        for i in 0..<1000 where limiter.admit(a, now: t + UInt64(i) * 1_000_000, p) { admitted += 1 }
        #expect((140...152).contains(admitted), "\(admitted): the refilled burst, then 1 per 10 ms over 1 s")
        // Hours later (the 48-bit clock wrapped): a full bucket, not a stale debt.
        t += 5 * 3600 * 1_000_000_000
        admitted = 0
        for _ in 0..<200 where limiter.admit(a, now: t, p) { admitted += 1 }
        #expect(admitted == 50)
        // IPv6: a /56 shares, the next /56 does not.
        let v6 = ClientAddress(bytes: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1] + Array(repeating: 0, count: 8))
        let v6same = ClientAddress(bytes: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0xFF] + Array(repeating: 7, count: 8))
        let v6other = ClientAddress(bytes: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 1, 0] + Array(repeating: 0, count: 8))
        for _ in 0..<50 { _ = limiter.admit(v6, now: t, p) }
        #expect(!limiter.admit(v6same, now: t, p))
        #expect(limiter.admit(v6other, now: t, p))
        #expect(RateLimiter.prefixText(v6same, settings) == "2001:db8:0:0:0:0:0:0/56")
        #expect(RateLimiter.prefixText(a2, settings) == "198.51.100.0/24")
    }

    @Test("Memory stays fixed: a million prefixes do not stop a busy prefix from being limited")
    func fixedMemory() {
        var settings = RateLimitSettings()
        settings.responsesPerSecond = 10
        settings.burst = 10
        let p = RateLimiter.Parameters(settings)
        let limiter = RateLimiter(slots: 1 << 12)
        let victim = ClientAddress(bytes: [203, 0, 113, 9])
        var t: UInt64 = 1_000_000_000
        var admitted = 0
        for i in 0..<1_000_000 {
            // A spoofed source from a random /24 each time, interleaved with the victim's flood.
            let x = UInt32(truncatingIfNeeded: i &* 2_654_435_761)
            _ = limiter.admit(
                ClientAddress(bytes: [UInt8(x >> 24), UInt8(x >> 16 & 0xFF), UInt8(x >> 8 & 0xFF), 1]), now: t, p)
            if i % 10 == 0, limiter.admit(victim, now: t, p) { admitted += 1 }
            t += 1000  // 1 µs
        }
        // 1 s of traffic: the victim gets about burst + rate, never its 100,000 queries.
        #expect(admitted < 200, "\(admitted) responses to one prefix")
    }
}
