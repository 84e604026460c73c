/// A parsed DNS query: header fields, the question and the EDNS data the answer depends on.
///
/// The question name is not copied: `qnameLength` octets start at offset 12 of the packet
/// (a question name is never compressed, since nothing precedes it to point at).
public struct Query: Sendable {
    public var id: UInt16 = 0
    /// The second header word as received (opcode, RD, CD…).
    public var flags: UInt16 = 0
    public var qnameLength: Int = 0
    public var qtype: UInt16 = 0
    public var qclass: UInt16 = 0
    /// Offset just past the question.
    public var questionEnd: Int = 12
    public var hasEDNS = false
    public var ednsPayload: UInt16 = 0
    public var ednsVersion: UInt8 = 0
    public var dnssecOK = false
    public var nsidRequested = false
    public var clientSubnet: ClientSubnet? = nil
    /// Where the COOKIE option's data starts in the packet (RFC 7873 §4), 0 without one, and its
    /// length: 8 (a client cookie alone) or 16 to 40 (with a server cookie).
    public var cookieAt: UInt16 = 0
    public var cookieLength: UInt8 = 0

    public init() {}

    /// Whether the query carries a COOKIE option.
    public var hasCookie: Bool { cookieAt != 0 }

    public var opcode: UInt8 { UInt8((flags >> HeaderFlags.opcodeShift) & HeaderFlags.opcodeMask) }
    public var recursionDesired: Bool { flags & HeaderFlags.rd != 0 }
    public var checkingDisabled: Bool { flags & HeaderFlags.cd != 0 }
}

/// What the parser concluded about a packet.
public enum ParseOutcome: Sendable {
    /// Not to be answered at all: too short for a header, or a response (QR=1).
    case drop
    /// Answer with this rcode; `query` holds what could be parsed (id, flags, maybe the question and EDNS).
    case error(rcode: UInt16, query: Query, questionParsed: Bool)
    case query(Query)
}

/// What the parser concluded, the query itself filled in place (`QueryParser.parse(_:into:)`).
public enum ParseStatus: Sendable, Equatable {
    case drop
    case error(rcode: UInt16, questionParsed: Bool)
    case query
}

/// Parses queries without allocating (RFC 1035 §4.1, RFC 6891 §6).
public enum QueryParser {
    @inline(__always)
    static func u16(_ p: UnsafeRawBufferPointer, _ i: Int) -> UInt16 {
        UInt16(p[i]) << 8 | UInt16(p[i + 1])
    }

    /// Length of the uncompressed name at `offset`, or nil when malformed, compressed or too long.
    @inline(__always)
    public static func plainNameLength(_ p: UnsafeRawBufferPointer, at offset: Int) -> Int? {
        // Offsets stay below the packet's length (at most 65535): wrapping arithmetic cannot wrap.
        var i = offset
        while true {
            guard i < p.count else { return nil }
            let len = Int(p[i])
            if len == 0 { break }
            guard len <= WireLimits.maxLabelLength else { return nil }
            i &+= len &+ 1
            guard i &- offset < WireLimits.maxNameLength else { return nil }
        }
        return i &+ 1 &- offset
    }

    /// Skips a possibly compressed name; returns the offset after it, or nil when malformed.
    /// Inlined: an OPT's root owner then costs one compare, not a call.
    @inline(__always)
    public static func skipName(_ p: UnsafeRawBufferPointer, at offset: Int) -> Int? {
        var i = offset
        var total = 0
        while true {
            guard i < p.count else { return nil }
            let len = Int(p[i])
            if len == 0 { return i + 1 }
            if len & 0xC0 == 0xC0 {
                guard i + 1 < p.count else { return nil }
                // The pointer ends the name here; its target must point backwards (no loops).
                let target = (len & 0x3F) << 8 | Int(p[i + 1])
                guard target < i else { return nil }
                return i + 2
            }
            guard len <= WireLimits.maxLabelLength else { return nil }
            total += len + 1
            guard total < WireLimits.maxNameLength else { return nil }
            i += len + 1
        }
    }

    public static func parse(_ p: UnsafeRawBufferPointer) -> ParseOutcome {
        var q = Query()
        switch parse(p, into: &q) {
        case .drop: return .drop
        case .error(let rcode, let questionParsed):
            return .error(rcode: rcode, query: q, questionParsed: questionParsed)
        case .query: return .query(q)
        }
    }

    /// Parses `p` into `q` (a fresh `Query()`), in place: the query path copies no `Query` around.
    /// After an error, `q` holds what could be parsed (id, flags, maybe the question and EDNS).
    public static func parse(_ p: UnsafeRawBufferPointer, into q: inout Query) -> ParseStatus {
        guard p.count >= 12 else { return .drop }
        q.id = u16(p, 0)
        q.flags = u16(p, 2)
        if q.flags & HeaderFlags.qr != 0 { return .drop }  // QR=1: never answer a response
        let qdcount = u16(p, 4)
        let ancount = u16(p, 6)
        let nscount = u16(p, 8)
        let arcount = u16(p, 10)
        guard qdcount == 1 else {
            // RFC 7873 §5.4: a query with no question and a COOKIE option asks for a server cookie.
            // NOERROR here; the engine answers FORMERR instead when it does not do cookies.
            if qdcount == 0 && ancount == 0 && nscount == 0 && q.opcode == 0 {
                if let end = parseAdditional(p, from: 12, count: Int(arcount), into: &q), end == p.count, q.hasCookie {
                    return .error(rcode: Rcode.noError, questionParsed: false)
                }
                let (id, flags) = (q.id, q.flags)
                q = Query()  // what the options said is not echoed on FORMERR: the OPT alone, as before
                q.id = id
                q.flags = flags
            }
            // No question to echo, but the OPT (if the rest parses) still is (RFC 6891 §7).
            var i = 12
            var ok = true
            for _ in 0..<Int(qdcount) {
                guard let next = skipName(p, at: i), next + 4 <= p.count else {
                    ok = false
                    break
                }
                i = next + 4
            }
            if ok {
                for _ in 0..<(Int(ancount) + Int(nscount)) {
                    guard let next = skipRR(p, at: i) else {
                        ok = false
                        break
                    }
                    i = next
                }
            }
            if ok { scanOPT(p, from: i, count: Int(arcount), into: &q) }
            return .error(rcode: q.opcode == 0 ? Rcode.formErr : Rcode.notImp, questionParsed: false)
        }
        guard let nameLength = plainNameLength(p, at: 12), 12 + nameLength + 4 <= p.count else {
            return .error(rcode: Rcode.formErr, questionParsed: false)
        }
        q.qnameLength = nameLength
        q.qtype = u16(p, 12 + nameLength)
        q.qclass = u16(p, 14 + nameLength)
        q.questionEnd = 16 + nameLength
        // Other opcodes get NOTIMP, but only after the OPT is found: RFC 6891 §7 wants it echoed.
        // What follows the question may be anything in them (UPDATE's sections): a parse error there is
        // still NOTIMP.
        let sectionError = q.opcode == 0 ? Rcode.formErr : Rcode.notImp
        var i = q.questionEnd
        // Answer and authority records of a query are skipped (RFC 1035 §4.1.1 allows none to matter).
        for _ in 0..<(Int(ancount) + Int(nscount)) {
            guard let next = skipRR(p, at: i) else {
                return .error(rcode: sectionError, questionParsed: true)
            }
            i = next
        }
        guard let end = parseAdditional(p, from: i, count: Int(arcount), into: &q) else {
            return .error(rcode: sectionError, questionParsed: true)
        }
        i = end
        if q.opcode != 0 { return .error(rcode: Rcode.notImp, questionParsed: true) }
        // RFC 1035 leaves no room for octets past the last record: knot answers FORMERR too.
        guard i == p.count else { return .error(rcode: Rcode.formErr, questionParsed: true) }
        return .query
    }

    /// The additional section: finds the OPT (one, owned by the root, RFC 6891 §6.1.1) and its
    /// options. Returns the offset past the section, or nil when it is malformed.
    @inline(__always)
    static func parseAdditional(_ p: UnsafeRawBufferPointer, from start: Int, count: Int, into q: inout Query) -> Int? {
        var i = start
        var sawOPT = false
        for _ in 0..<count {
            guard let afterName = skipName(p, at: i), afterName + 10 <= p.count else { return nil }
            let type = u16(p, afterName)
            let rdlen = Int(u16(p, afterName + 8))
            let rdStart = afterName + 10
            guard rdStart + rdlen <= p.count else { return nil }
            if type == RRType.opt {
                guard !sawOPT, afterName == i + 1, p[i] == 0 else {
                    // Which OPT would we echo? None, as knot.
                    q.hasEDNS = false
                    return nil
                }
                sawOPT = true
                q.hasEDNS = true
                q.ednsPayload = u16(p, afterName + 2)
                q.ednsVersion = p[afterName + 5]
                q.dnssecOK = p[afterName + 6] & 0x80 != 0
                guard parseOptions(p, from: rdStart, to: rdStart + rdlen, into: &q) else { return nil }
            }
            i = rdStart + rdlen
        }
        return i
    }

    /// Finds a well-formed OPT among `count` additional records, only to echo EDNS on an error reply.
    static func scanOPT(_ p: UnsafeRawBufferPointer, from start: Int, count: Int, into q: inout Query) {
        var i = start
        for _ in 0..<count {
            guard let afterName = skipName(p, at: i), afterName + 10 <= p.count else { return }
            let rdlen = Int(u16(p, afterName + 8))
            guard afterName + 10 + rdlen <= p.count else { return }
            if u16(p, afterName) == RRType.opt && afterName == i + 1 && p[i] == 0 {
                q.hasEDNS = true
                q.ednsPayload = u16(p, afterName + 2)
                q.ednsVersion = p[afterName + 5]
                q.dnssecOK = p[afterName + 6] & 0x80 != 0
                return
            }
            i = afterName + 10 + rdlen
        }
    }

    static func skipRR(_ p: UnsafeRawBufferPointer, at offset: Int) -> Int? {
        guard let afterName = skipName(p, at: offset), afterName + 10 <= p.count else { return nil }
        let end = afterName + 10 + Int(u16(p, afterName + 8))
        return end <= p.count ? end : nil
    }

    @inline(__always)
    static func parseOptions(_ p: UnsafeRawBufferPointer, from start: Int, to end: Int, into q: inout Query) -> Bool {
        var i = start
        while i < end {
            guard i + 4 <= end else { return false }
            let code = u16(p, i)
            let len = Int(u16(p, i + 2))
            guard i + 4 + len <= end else { return false }
            switch code {
            case EDNSOption.nsid:
                q.nsidRequested = true
            case EDNSOption.clientSubnet:
                // RFC 7871 §7.1.1: a malformed option or a non-zero scope in a query is FORMERR.
                guard q.clientSubnet == nil,
                    let ecs = ClientSubnet.parse(UnsafeRawBufferPointer(rebasing: p[(i + 4)..<(i + 4 + len)])),
                    ecs.scopePrefix == 0
                else { return false }
                q.clientSubnet = ecs
            case EDNSOption.cookie:
                // RFC 7873 §5.2.2: a client cookie alone (8) or with a server cookie of 8 to 32
                // octets; any other length is FORMERR. A second COOKIE option is ignored, as knot.
                guard len == 8 || (16...40).contains(len) else { return false }
                if q.cookieAt == 0 {
                    q.cookieAt = UInt16(truncatingIfNeeded: i + 4)  // a packet is at most 65,535 octets
                    q.cookieLength = UInt8(len)
                }
            default:
                break  // RFC 6891 §6.1.2: unknown options are ignored
            }
            i += 4 + len
        }
        return true
    }
}
