import DNSWire
import Testing

@Suite struct QueryParserTests {
    static let question: [UInt8] = [
        3, 119, 119, 119, 7, 101, 120, 97, 109, 112, 108, 101, 3, 99, 111, 109, 0, 0, 1, 0, 1
    ]

    static func header(flags: UInt16 = 0, qd: UInt16 = 1, an: UInt16 = 0, ar: UInt16 = 0) -> [UInt8] {
        [0x12, 0x34, UInt8(flags >> 8), UInt8(flags & 0xFF), 0, UInt8(qd), 0, UInt8(an), 0, 0, 0, UInt8(ar)]
    }

    static func opt(_ options: [UInt8] = [], version: UInt8 = 0, flags: UInt8 = 0) -> [UInt8] {
        [0, 0, 41, 0x04, 0xD0, 0, version, flags, 0, UInt8(options.count >> 8), UInt8(options.count & 0xFF)] + options
    }

    static func parse(_ p: [UInt8]) -> ParseOutcome { p.withUnsafeBytes { QueryParser.parse($0) } }

    static func rcode(_ p: [UInt8]) -> UInt16? {
        if case .error(let rcode, _, _) = parse(p) { return rcode }
        return nil
    }

    @Test("A plain query parses with its question and no EDNS")
    func plain() throws {
        guard case .query(let q) = Self.parse(Self.header() + Self.question) else {
            Issue.record("not parsed")
            return
        }
        #expect(q.id == 0x1234 && q.qtype == 1 && q.qclass == 1 && q.qnameLength == 17 && !q.hasEDNS)
    }

    @Test(
        "Responses and short packets are dropped",
        arguments: [
            header(flags: 0x8000) + question, [0x12, 0x34], []
        ])
    func dropped(packet: [UInt8]) {
        if case .drop = Self.parse(packet) {} else { Issue.record("expected drop") }
    }

    @Test(
        "Malformed questions and sections are FORMERR",
        arguments: [
            header(qd: 0), header(qd: 2) + question + question, header() + Array(question.prefix(10)),
            header() + [0xC0, 12, 0, 1, 0, 1], header() + [64] + Array(repeating: 97, count: 64) + [0, 0, 1, 0, 1],
            header() + question + [1, 2, 3], header(ar: 2) + question + opt() + opt(),
            header(ar: 1) + question + [0, 0, 41],
            header(an: 1) + question + [0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 8, 1, 2, 3, 4]
        ])
    func formErr(packet: [UInt8]) {
        #expect(Self.rcode(packet) == Rcode.formErr)
    }

    @Test("FORMERR for qdcount 0 or 2 still echoes EDNS when the OPT is there")
    func formErrKeepsEDNS() {
        for p in [
            Self.header(qd: 0, ar: 1) + Self.opt(),
            Self.header(qd: 2, ar: 1) + Self.question + Self.question + Self.opt()
        ] {
            guard case .error(let rcode, let q, let withQuestion) = Self.parse(p) else {
                Issue.record("not an error")
                continue
            }
            #expect(rcode == Rcode.formErr && q.hasEDNS && !withQuestion)
        }
    }

    @Test("Other opcodes are NOTIMP")
    func notImp() {
        #expect(Self.rcode(Self.header(flags: 4 << 11) + Self.question) == Rcode.notImp)
    }

    @Test("EDNS: payload, version, DO and NSID are read; unknown options ignored")
    func edns() throws {
        let p =
            Self.header(ar: 1) + Self.question + Self.opt([0, 3, 0, 0, 0xFD, 0xE9, 0, 1, 0x55], version: 1, flags: 0x80)
        guard case .query(let q) = Self.parse(p) else {
            Issue.record("not parsed")
            return
        }
        #expect(q.hasEDNS && q.ednsPayload == 1232 && q.ednsVersion == 1 && q.dnssecOK && q.nsidRequested)
    }

    @Test(
        "ECS: well-formed options parse; malformed ones are FORMERR (RFC 7871 §6)",
        arguments: [
            ([0, 1, 24, 0, 192, 0, 2], true), ([0, 2, 56, 0, 0x20, 1, 0xd, 0xb8, 0, 0, 0], true), ([0, 1, 0, 0], true),
            ([0, 1, 24, 0, 192, 0, 2, 0], false), ([0, 1, 23, 0, 192, 0, 3], false), ([0, 1, 24, 8, 192, 0, 2], false),
            ([0, 3, 8, 0, 1], false), ([0, 1, 33, 0, 1, 2, 3, 4, 5], false), ([0, 1], false)
        ] as [([UInt8], Bool)])
    func ecs(data: [UInt8], valid: Bool) throws {
        let p = Self.header(ar: 1) + Self.question + Self.opt([0, 8, 0, UInt8(data.count)] + data)
        switch Self.parse(p) {
        case .query(let q):
            #expect(valid)
            #expect(q.clientSubnet?.sourcePrefix == data[2])
            #expect(q.clientSubnet?.addressLength == data.count - 4)
        default:
            #expect(!valid)
        }
    }

    @Test("ECS address octets round-trip")
    func ecsOctets() throws {
        let ecs = try #require(
            ([0, 2, 64, 0, 0x20, 1, 0xd, 0xb8, 1, 2, 3, 4] as [UInt8]).withUnsafeBytes { ClientSubnet.parse($0) })
        #expect((0..<8).map(ecs.octet) == [0x20, 1, 0xd, 0xb8, 1, 2, 3, 4])
    }
}

/// Presentation names from config files and the admin API: malformed escapes are nil, never a trap.
@Suite struct NameTextTests {
    @Test(
        "malformed names are nil",
        arguments: [
            "\\1.", "\\12", "\\", "a\\", "\\999.", "\\25a.", "a..b", "..", ".a",
            String(repeating: "a", count: 64) + ".",
            String(repeating: "abcdefg.", count: 32)
        ])
    func malformed(text: String) {
        #expect(Name.fromText(text) == nil)
    }

    @Test(
        "escapes decode",
        arguments: [
            ("\\065b.", [2, 65, 98, 0]), ("a\\.b.", [3, 97, 46, 98, 0]), ("\\255", [1, 255, 0]),
            (".", [0])
        ])
    func escapes(text: String, wire: [UInt8]) {
        #expect(Name.fromText(text) == wire)
    }
}
