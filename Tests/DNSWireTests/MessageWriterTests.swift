import DNSWire
import Testing

@Suite struct MessageWriterTests {
    @Test("Names round-trip through text with escapes", arguments: [
        "www.example.com.", ".", "a\\.b.example.", "\\000\\255.x.", "*.wild.example.com.",
    ])
    func nameText(text: String) throws {
        let wire = try #require(Name.fromText(text))
        #expect(Name.toText(wire) == text)
    }

    @Test("Overlong labels and names are rejected")
    func nameLimits() {
        #expect(Name.fromText(String(repeating: "a", count: 64) + ".") == nil)
        #expect(Name.fromText(Array(repeating: String(repeating: "a", count: 63), count: 4).joined(separator: ".") + ".") == nil)
        #expect(Name.fromText("a..b.") == nil)
    }

    @Test("A repeated name and a suffix are written as pointers (RFC 1035 §4.1.4)")
    func compression() throws {
        var buf = [UInt8](repeating: 0, count: 512)
        let www = Name.fromText("www.example.com.")!, mail = Name.fromText("MAIL.Example.COM.")!
        let length = buf.withUnsafeMutableBytes { b -> Int in
            var w = MessageWriter(base: b.baseAddress!, limit: 512)
            _ = w.writeHeader(id: 1, flags: 0)
            _ = www.withUnsafeBytes { w.writeName($0) }
            _ = www.withUnsafeBytes { w.writeName($0) }
            _ = mail.withUnsafeBytes { w.writeName($0) }
            return w.position
        }
        // 17 octets for the first name, a 2-octet pointer, then "mail" + pointer to "example.com".
        #expect(length == 12 + 17 + 2 + 5 + 2)
        #expect(buf[29] == 0xC0 && buf[30] == 12)
        #expect(buf[36] == 0xC0 && buf[37] == 16)
    }

    @Test("Writes past the limit fail and leave the message unchanged")
    func limit() {
        var buf = [UInt8](repeating: 0, count: 64)
        buf.withUnsafeMutableBytes { b in
            var w = MessageWriter(base: b.baseAddress!, limit: 20)
            _ = w.writeHeader(id: 1, flags: 0)
            let long = Name.fromText("a-long-name.example.com.")!
            #expect(!long.withUnsafeBytes { w.writeName($0) })
            #expect(w.position == 12)
        }
    }

    @Test("Compressible RDATA is compressed; SRV targets are not (RFC 3597 §4, RFC 2782)")
    func rdataCompression() {
        var buf = [UInt8](repeating: 0, count: 512)
        buf.withUnsafeMutableBytes { b in
            var w = MessageWriter(base: b.baseAddress!, limit: 512)
            _ = w.writeHeader(id: 1, flags: 0)
            let name = Name.fromText("example.com.")!
            _ = name.withUnsafeBytes { w.writeName($0) }
            let before = w.position
            _ = ([0, 10] + name).withUnsafeBytes { w.writeRDATA(type: RRType.mx, $0) }
            #expect(w.position - before == 2 + 2 + 2)  // rdlength, preference, pointer
            let srv: [UInt8] = [0, 0, 0, 5, 0x13, 0xC4] + name
            let mid = w.position
            _ = srv.withUnsafeBytes { w.writeRDATA(type: RRType.srv, $0) }
            #expect(w.position - mid == 2 + srv.count)
        }
    }
}
