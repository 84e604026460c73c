import DNSWire
import Testing

@Suite struct MessageWriterTests {
    @Test(
        "Names round-trip through text with escapes",
        arguments: [
            "www.example.com.", ".", "a\\.b.example.", "\\000\\255.x.", "*.wild.example.com."
        ])
    func nameText(text: String) throws {
        let wire = try #require(Name.fromText(text))
        #expect(Name.toText(wire) == text)
    }

    @Test("A subdomain match starts at a label boundary and ignores case")
    func subdomain() {
        let sub = Name.fromText("sub.example.com.")![...]
        #expect(Name.isSubdomain(Name.fromText("ns1.SUB.example.com.")![...], of: sub))
        #expect(Name.isSubdomain(sub, of: sub))
        #expect(!Name.isSubdomain(Name.fromText("xsub.example.com.")![...], of: sub))
        // A label whose last octets spell the suffix's wire form is still not below it.
        #expect(!Name.isSubdomain(Name.fromText("a\\003sub.example.com.")![...], of: sub))
        #expect(!Name.isSubdomain(Name.fromText("example.com.")![...], of: sub))
    }

    @Test("Overlong labels and names are rejected")
    func nameLimits() {
        #expect(Name.fromText(String(repeating: "a", count: 64) + ".") == nil)
        #expect(
            Name.fromText(Array(repeating: String(repeating: "a", count: 63), count: 4).joined(separator: ".") + ".")
                == nil)
        #expect(Name.fromText("a..b.") == nil)
    }

    @Test("A repeated name and a suffix are written as pointers (RFC 1035 §4.1.4)")
    func compression() throws {
        var buf = [UInt8](repeating: 0, count: 512)
        let www = Name.fromText("www.example.com.")!
        let mail = Name.fromText("MAIL.Example.COM.")!
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

/// Decodes a possibly compressed name at `offset`, refusing pointers that do not point backwards.
func decodeName(_ m: [UInt8], at offset: Int) -> String? {
    var out: [String] = []
    var i = offset
    var limit = offset
    var hops = 0
    while true {
        guard i < m.count else { return nil }
        let len = Int(m[i])
        if len == 0 { return out.joined(separator: ".") + "." }
        if len & 0xC0 == 0xC0 {
            let target = (len & 0x3F) << 8 | Int(m[i + 1])
            guard target < limit, hops < 64 else { return nil }  // strictly backwards, as resolvers require
            limit = target
            i = target
            hops += 1
            continue
        }
        out.append(String(decoding: m[(i + 1)..<(i + 1 + len)], as: UTF8.self))
        i += len + 1
    }
}

@Suite struct CompressionSafetyTests {
    @Test("A name is never compressed against itself while half-written (stale bytes in a reused buffer)")
    func staleBytes() throws {
        // The buffer still holds an older response: pointers to "rnd.test." everywhere.
        var buf = [UInt8](repeating: 0, count: 512)
        for k in stride(from: 0, to: 512, by: 2) {
            buf[k] = 0xC0
            buf[k + 1] = 24
        }
        let qname = Name.fromText("_tcp.deep.x.rnd.test.")!
        let target = Name.fromText("z.c.c.rnd.test.")!
        var at = 0
        buf.withUnsafeMutableBytes { b in
            var w = MessageWriter(base: b.baseAddress!, limit: 512)
            _ = w.writeHeader(id: 1, flags: 0)
            _ = qname.withUnsafeBytes { w.append($0) }
            w.registerName(at: 12)
            at = w.position
            _ = target.withUnsafeBytes { w.writeName($0) }
        }
        #expect(decodeName(buf, at: at) == "z.c.c.rnd.test.")
    }

    @Test("The question's labels are compression targets once a name needs them (registered late, in order)")
    func deferredQuestion() throws {
        var buf = [UInt8](repeating: 0xC0, count: 512)
        let qname = Name.fromText("www.example.com.")!
        var at: [Int] = []
        buf.withUnsafeMutableBytes { b in
            var w = MessageWriter(base: b.baseAddress!, limit: 512)
            _ = w.writeHeader(id: 1, flags: 0)
            _ = qname.withUnsafeBytes { w.append($0) }
            w.registerName(at: 12)
            at.append(w.position)
            _ = qname.withUnsafeBytes { w.writeName($0) }  // the owner: a pointer to 12
            at.append(w.position)
            _ = Name.fromText("ns.example.com.")!.withUnsafeBytes { w.writeName($0) }  // "ns" + pointer to example.com
            at.append(w.position)
            let before = w.position
            _ = Name.fromText("mail.other.net.")!.withUnsafeBytes { w.writeName($0) }
            w.rewind(to: before)  // drops other.net's targets, keeps the question's
            _ = Name.fromText("x.com.")!.withUnsafeBytes { w.writeName($0) }  // "x" + pointer to com
            at.append(w.position)
        }
        #expect(at[1] - at[0] == 2)
        #expect(at[2] - at[1] == 3 + 2)
        #expect(at[3] - at[2] == 2 + 2)
        #expect(decodeName(buf, at: at[0]) == "www.example.com.")
        #expect(decodeName(buf, at: at[1]) == "ns.example.com.")
        #expect(decodeName(buf, at: at[2]) == "x.com.")
    }

    @Test("Random names written one after another all decode back", arguments: [1, 2, 3] as [UInt64])
    func roundTrip(seed: UInt64) throws {
        var state = seed
        func next() -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int(truncatingIfNeeded: state >> 33)
        }
        let labels = ["a", "b", "c", "rnd", "test", "x", "deep", "_tcp", "A", "Rnd"]
        for _ in 0..<200 {
            var buf = [UInt8](repeating: 0, count: 1024)
            for k in 0..<1024 { buf[k] = UInt8(truncatingIfNeeded: next()) }
            var names: [String] = []
            var offsets: [Int] = []
            buf.withUnsafeMutableBytes { b in
                var w = MessageWriter(base: b.baseAddress!, limit: 1024)
                _ = w.writeHeader(id: 1, flags: 0)
                func randomName() -> String {
                    (0..<(1 + next() % 5)).map { _ in labels[next() % labels.count] }.joined(separator: ".") + "."
                }
                if next() % 2 == 0 {  // a question, registered as the engine does
                    let text = randomName()
                    _ = Name.fromText(text)!.withUnsafeBytes { w.append($0) }
                    w.registerName(at: 12)
                    names.append(text)
                    offsets.append(12)
                }
                for _ in 0..<(1 + next() % 12) {
                    let text = randomName()
                    let wire = Name.fromText(text)!
                    let at = w.position
                    if wire.withUnsafeBytes({ w.writeName($0) }) {
                        names.append(text)
                        offsets.append(at)
                    }
                    if next() % 5 == 0 && offsets.last == at {  // take it back, as a record that did not fit
                        w.rewind(to: at)
                        names.removeLast()
                        offsets.removeLast()
                    }
                }
            }
            for (text, at) in zip(names, offsets) {
                #expect(decodeName(buf, at: at)?.lowercased() == text.lowercased(), "\(text) at \(at)")
            }
        }
    }
}
