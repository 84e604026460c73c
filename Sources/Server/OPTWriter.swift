import DNSWire

/// Writes the OPT record of a response (RFC 6891 §6.1.2), echoing NSID and ECS where asked.
struct OPTWriter {
    let query: Query
    /// The engine's options, borrowed for the duration of one response: no copy, no retain.
    let options: UnsafePointer<EngineOptions>
    var rcode: UInt16
    var includeClientSubnet = true
    /// ECS scope prefix of the answer (RFC 7871 §7.2.1): 0 when the answer does not depend on the client.
    var scopePrefix: UInt8 = 0

    init(query: Query, options: UnsafePointer<EngineOptions>, rcode: UInt16) {
        self.query = query
        self.options = options
        self.rcode = rcode
    }

    var wantsNSID: Bool { query.nsidRequested && !options.pointee.nsid.isEmpty }

    /// Octets the record takes.
    var size: Int {
        var n = 11
        if wantsNSID { n += 4 + options.pointee.nsid.count }
        if includeClientSubnet, let ecs = query.clientSubnet { n += 8 + ecs.addressLength }
        return n
    }

    func write(_ w: inout MessageWriter) -> Bool {
        let start = w.position
        let ttl = UInt32(rcode >> 4) << 24 | (query.dnssecOK ? 0x8000 : 0)
        guard w.appendByte(0), w.appendU16(RRType.opt), w.appendU16(UInt16(options.pointee.maxUDPPayload)),
            w.appendU32(ttl)
        else { w.rewind(to: start); return false }
        let lengthAt = w.position
        guard w.appendU16(0) else { w.rewind(to: start); return false }
        if wantsNSID {
            let ok = options.pointee.nsid.withUnsafeBytes { w.appendU16(EDNSOption.nsid) && w.appendU16(UInt16($0.count)) && w.append($0) }
            guard ok else { w.rewind(to: start); return false }
        }
        if includeClientSubnet, let ecs = query.clientSubnet {
            // RFC 7871 §7.2.1: echo family, source prefix and address; set our scope.
            let n = ecs.addressLength
            guard w.appendU16(EDNSOption.clientSubnet), w.appendU16(UInt16(4 + n)), w.appendU16(ecs.family),
                w.appendByte(ecs.sourcePrefix), w.appendByte(scopePrefix)
            else { w.rewind(to: start); return false }
            for i in 0..<n where !w.appendByte(ecs.octet(i)) { w.rewind(to: start); return false }
        }
        w.setU16(UInt16(w.position - lengthAt - 2), at: lengthAt)
        w.incrementCount(section: 3)
        return true
    }
}
