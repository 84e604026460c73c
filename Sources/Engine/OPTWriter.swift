import DNSWire
import Protection

/// Writes the OPT record of a response (RFC 6891 §6.1.2), echoing NSID and ECS where asked (the
/// COOKIE option is appended after it, `appendCookie`, so that a response without one pays nothing).
struct OPTWriter {
    /// What of the query the record echoes (not the whole `Query`: a response copies none).
    let dnssecOK: Bool
    let nsidRequested: Bool
    let clientSubnet: ClientSubnet?
    /// The engine's options, borrowed for the duration of one response: no copy, no retain.
    let options: UnsafePointer<EngineOptions>
    var rcode: UInt16
    var includeClientSubnet = true
    /// ECS scope prefix of the answer (RFC 7871 §7.2.1): 0 when the answer does not depend on the client.
    var scopePrefix: UInt8 = 0

    init(query: borrowing Query, options: UnsafePointer<EngineOptions>, rcode: UInt16) {
        dnssecOK = query.dnssecOK
        nsidRequested = query.nsidRequested
        clientSubnet = query.clientSubnet
        self.options = options
        self.rcode = rcode
    }

    var wantsNSID: Bool { nsidRequested && !options.pointee.nsid.isEmpty }

    /// The ECS option echoed, if any.
    var echoedSubnet: ClientSubnet? { includeClientSubnet ? clientSubnet : nil }

    /// Octets of the record's options (its RDATA).
    var rdlength: Int {
        (wantsNSID ? 4 + options.pointee.nsid.count : 0) + (echoedSubnet.map { 8 + $0.addressLength } ?? 0)
    }

    /// Octets the record takes.
    var size: Int { 11 + rdlength }

    /// Appends the record, or nothing (false) when it does not fit under the writer's limit.
    func write(_ w: inout MessageWriter) -> Bool {
        let rdlength = self.rdlength
        guard w.position + 11 + rdlength <= w.limit else { return false }
        // Checked once above: the fields go in with plain stores.
        let p = w.base + w.position
        p.storeBytes(of: 0, as: UInt8.self)  // the root owner
        p.storeBytes(of: RRType.opt.bigEndian, toByteOffset: 1, as: UInt16.self)
        p.storeBytes(of: UInt16(options.pointee.maxUDPPayload).bigEndian, toByteOffset: 3, as: UInt16.self)
        let ttl = UInt32(rcode >> 4) << 24 | (dnssecOK ? 0x8000 : 0)  // extended rcode, version 0, DO
        p.storeBytes(of: ttl.bigEndian, toByteOffset: 5, as: UInt32.self)
        p.storeBytes(of: UInt16(rdlength).bigEndian, toByteOffset: 9, as: UInt16.self)
        var at = 11
        if wantsNSID {
            let nsid = options.pointee.nsid.count
            p.storeBytes(of: EDNSOption.nsid.bigEndian, toByteOffset: at, as: UInt16.self)
            p.storeBytes(of: UInt16(nsid).bigEndian, toByteOffset: at + 2, as: UInt16.self)
            options.pointee.nsid.withUnsafeBytes { (p + at + 4).copyMemory(from: $0.baseAddress!, byteCount: nsid) }
            at += 4 + nsid
        }
        if let ecs = echoedSubnet {
            let ecsLength = ecs.addressLength
            // RFC 7871 §7.2.1: echo family, source prefix and address; set our scope.
            p.storeBytes(of: EDNSOption.clientSubnet.bigEndian, toByteOffset: at, as: UInt16.self)
            p.storeBytes(of: UInt16(4 + ecsLength).bigEndian, toByteOffset: at + 2, as: UInt16.self)
            p.storeBytes(of: ecs.family.bigEndian, toByteOffset: at + 4, as: UInt16.self)
            p.storeBytes(of: ecs.sourcePrefix, toByteOffset: at + 6, as: UInt8.self)
            p.storeBytes(of: scopePrefix, toByteOffset: at + 7, as: UInt8.self)
            for i in 0..<ecsLength { p.storeBytes(of: ecs.octet(i), toByteOffset: at + 8 + i, as: UInt8.self) }
        }
        w.position += 11 + rdlength
        w.incrementCount(section: .additional)
        return true
    }
}

extension QueryEngine {
    /// Octets the COOKIE option adds to the OPT of a response to `q`: 0 without one, or with cookies off.
    @inline(__always)
    func cookieSize(_ q: borrowing Query) -> Int {
        q.cookieAt != 0 && box.pointer.pointee.cookieSecret != nil ? 4 + 8 + ServerCookie.length : 0
    }

    /// Appends the COOKIE option (RFC 7873 §5.2.3–5.2.5: the client cookie and a fresh server cookie
    /// for `client`) to the OPT record written last, at `optAt`, and counts the query. Nothing when
    /// the query had no cookie, cookies are off, or it does not fit.
    @inline(never)
    func appendCookie(
        _ w: inout MessageWriter, optAt: Int, packet: UnsafeRawBufferPointer, query q: borrowing Query,
        client: ClientAddress
    ) {
        let size = cookieSize(q)
        guard size > 0, let secret = box.pointer.pointee.cookieSecret, let base = packet.baseAddress,
            w.position + size <= w.limit
        else { return }
        metrics.record(.cookie)
        let p = w.base + w.position
        p.storeBytes(of: EDNSOption.cookie.bigEndian, as: UInt16.self)
        p.storeBytes(of: UInt16(8 + ServerCookie.length).bigEndian, toByteOffset: 2, as: UInt16.self)
        (p + 4).copyMemory(from: base + Int(q.cookieAt), byteCount: 8)
        ServerCookie.make(
            clientCookie: base + Int(q.cookieAt), client: client, time: ServerCookie.now(), secret: secret,
            into: p + 12)
        w.position += size
        w.setU16(w.u16(at: optAt + 9) + UInt16(size), at: optAt + 9)
    }
}
