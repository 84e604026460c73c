import DNSWire
import Zones

/// The walk of one query through one zone (RFC 1034 §4.3.2, RFC 4592, RFC 6672), writing as it goes.
///
/// Sections are written in order: answer while following CNAME/DNAME chains, then authority,
/// then additional. An RRset that does not fit is left out whole and sets `truncated`: the
/// response keeps the RRsets before it and carries TC=1 (RFC 2181 §9; knot does the same).
struct Resolution {
    let zone: Zone
    let qtype: UInt16
    let dnssecOK: Bool
    /// Two 256-octet buffers used in turn, for names synthesized from DNAMEs and wildcards: a step
    /// only needs the previous step's name. 512 octets stay on the stack (larger temporary
    /// allocations go to the heap).
    let scratch: UnsafeMutableRawPointer
    static let scratchSize = 512

    @inline(__always)
    var scratchForStep: UnsafeMutableRawPointer { scratch + 256 * (chain & 1) }
    var rcode = Rcode.noError
    var authoritative = true
    /// An answer or authority RRset, or required glue (RFC 9471 §3), did not fit: set TC.
    var truncated = false
    var chain = 0
    /// The owners written on the CNAME chain so far, as case-insensitive 64-bit hashes: the names
    /// themselves may live in scratch space reused two steps later. A target already among them
    /// is a loop (RFC 2181 §10.1.1 / knot: stop at the first repeat, no RR written twice).
    private var owners = InlineArray<8, UInt64>(repeating: 0)
    private var extraDone = InlineArray<16, Int32>(repeating: -1)
    private var extraCount = 0
    /// DNAME RRsets already in the answer: a DNAME that maps into itself is written once (as knot).
    private var dnamesWritten = InlineArray<8, Int32>(repeating: -1)
    private var dnameCount = 0
    /// The load-balanced side of the query; its runtime is nil when the snapshot has no such names.
    var steer = SteerContext()

    init(zone: Zone, qtype: UInt16, dnssecOK: Bool, scratch: UnsafeMutableRawPointer) {
        self.zone = zone
        self.qtype = qtype
        self.dnssecOK = dnssecOK
        self.scratch = scratch
    }

    /// Answers `sname` from this zone; `sname` is the query name or a CNAME/DNAME target inside the zone.
    mutating func resolve(_ sname: UnsafeRawBufferPointer, writer w: inout MessageWriter) {
        let labels = LabelOffsets(sname)
        resolve(sname, labels: labels, writer: &w)
    }

    /// As above, with the label offsets of `sname` already computed.
    mutating func resolve(
        _ sname: UnsafeRawBufferPointer, labels: borrowing LabelOffsets, writer w: inout MessageWriter
    ) {
        let n = labels.count
        var node = zone.apex
        var k = zone.originLabels
        while k < n {
            let candidate = labels.suffix(sname, labels: k + 1)
            let child = zone.find(candidate)
            if child < 0 { break }
            node = child
            k += 1
            let flags = zone.nodes[node].flags
            if k < n {
                if flags & Zone.Flag.delegation != 0 {
                    referral(node, owner: candidate, writer: &w)
                    return
                }
                if flags & Zone.Flag.dname != 0 {
                    dname(node, owner: candidate, sname: sname, prefixLength: labels[n - k], writer: &w)
                    return
                }
            }
        }
        if k == n {
            exact(node, owner: sname, writer: &w)
            return
        }
        // RFC 4592 §3.3.1: the closest encloser's wildcard child answers for the missing name.
        if zone.nodes[node].flags & Zone.Flag.wildcardChild != 0 {
            let encloser = labels.suffix(sname, labels: k)
            let star = scratchForStep
            star.storeBytes(of: 1, as: UInt8.self)
            star.storeBytes(of: UInt8(ascii: "*"), toByteOffset: 1, as: UInt8.self)
            (star + 2).copyMemory(from: encloser.baseAddress!, byteCount: encloser.count)
            let wildcard = zone.find(UnsafeRawBufferPointer(start: star, count: encloser.count + 2))
            if wildcard >= 0 {
                exact(wildcard, owner: sname, writer: &w)
                return
            }
        }
        rcode = Rcode.nxDomain
        negative(writer: &w)
    }

    /// The name exists (or a wildcard stands for it): answer, alias, refer or say NODATA.
    mutating func exact(_ node: Int, owner: UnsafeRawBufferPointer, writer w: inout MessageWriter) {
        let flags = zone.nodes[node].flags
        if flags & Zone.Flag.steered != 0 && (qtype == RRType.a || qtype == RRType.aaaa) && steer.runtime != nil {
            if steered(node, owner: owner, writer: &w) { return }
        }
        if flags & Zone.Flag.delegation != 0 && qtype != RRType.ds {
            referral(node, owner: owner, writer: &w)
            return
        }
        // A CNAME answers every type but itself; ANY gets the CNAME unchased (RFC 1034 §3.6.2), and
        // RRSIG/NSEC, which live beside a CNAME in signed zones, are answered from the node (as knot does).
        if flags & Zone.Flag.cname != 0 && qtype != RRType.cname && qtype != RRType.any && qtype != RRType.rrsig
            && qtype != RRType.nsec
        {
            let cname = zone.rrset(at: node, type: RRType.cname)
            guard writeRRset(cname, owner: owner, section: .answer, writer: &w) else {
                truncated = true
                return
            }
            var target = UnsafeRawBufferPointer(start: nil, count: 0)
            _ = zone.forEachRecord(cname) {
                target = $0
                return false
            }
            follow(target, owner: owner, writer: &w)
            return
        }
        if qtype == RRType.any {
            // RFC 8482 §4.1: answer ANY with one RRset of the name, not all of them.
            let n = zone.nodes[node]
            if n.rrsetCount > 0 {
                var pick = Int(n.rrsetStart)
                for r in Int(n.rrsetStart)..<Int(n.rrsetStart + n.rrsetCount) where zone.rrsets[r].type != RRType.rrsig
                {
                    pick = r
                    break
                }
                guard writeRRset(pick, owner: owner, section: .answer, writer: &w) else {
                    truncated = true
                    return
                }
                additional(for: pick, writer: &w)
                return
            }
            negative(writer: &w)
            return
        }
        let r = zone.rrset(at: node, type: qtype)
        if r >= 0 {
            guard writeRRset(r, owner: owner, section: .answer, writer: &w) else {
                truncated = true
                return
            }
            additional(for: r, writer: &w)
            return
        }
        negative(writer: &w)
    }

    /// Follows a CNAME or synthesized CNAME target inside this zone; targets elsewhere are the resolver's.
    /// `owner` is the name whose CNAME was just written.
    mutating func follow(_ target: UnsafeRawBufferPointer, owner: UnsafeRawBufferPointer, writer w: inout MessageWriter)
    {
        guard chain < QueryEngine.maxChain - 1, zone.origin.withUnsafeBytes({ Name.isSubdomain(target, of: $0) })
        else { return }
        // A target already an owner on the chain (itself included) means a loop: stop with what is
        // written, so that no CNAME appears twice (`self CNAME self`, `*.w CNAME x.w`).
        let seen = min(chain, owners.count - 1)
        owners[seen] = Self.nameHash(owner)
        let t = Self.nameHash(target)
        for i in 0...seen where owners[i] == t { return }
        chain += 1
        resolve(target, writer: &w)
    }

    /// FNV-1a over the name's octets with ASCII upper case folded: equal for names equal in any case.
    static func nameHash(_ name: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in name { h = (h ^ UInt64(Name.lower(b))) &* 0x100_0000_01b3 }
        return h
    }

    /// RFC 6672 §3.3: answer with the DNAME and a CNAME synthesized from it, then follow that.
    mutating func dname(
        _ node: Int, owner: UnsafeRawBufferPointer, sname: UnsafeRawBufferPointer, prefixLength: Int,
        writer w: inout MessageWriter
    ) {
        let set = zone.rrset(at: node, type: RRType.dname)
        var already = false
        for i in 0..<dnameCount where dnamesWritten[i] == Int32(set) { already = true }
        if !already {
            guard writeRRset(set, owner: owner, section: .answer, writer: &w) else {
                truncated = true
                return
            }
            if dnameCount < 8 {
                dnamesWritten[dnameCount] = Int32(set)
                dnameCount += 1
            }
        }
        var target = UnsafeRawBufferPointer(start: nil, count: 0)
        _ = zone.forEachRecord(set) {
            target = $0
            return false
        }
        // RFC 6672 §2.2: a synthesized name longer than 255 octets is YXDOMAIN.
        guard prefixLength + target.count <= WireLimits.maxNameLength else {
            rcode = Rcode.yxDomain
            return
        }
        let synthesized = scratchForStep
        synthesized.copyMemory(from: sname.baseAddress!, byteCount: prefixLength)
        (synthesized + prefixLength).copyMemory(from: target.baseAddress!, byteCount: target.count)
        let name = UnsafeRawBufferPointer(start: synthesized, count: prefixLength + target.count)
        guard w.writeRR(owner: sname, type: RRType.cname, rrClass: RRClass.in, ttl: zone.rrsets[set].ttl, rdata: name)
        else {
            truncated = true
            return
        }
        w.incrementCount(section: .answer)
        // The synthesized CNAME is itself the answer to a CNAME query.
        if qtype != RRType.cname { follow(name, owner: sname, writer: &w) }
    }

    /// A referral to the zone cut at `node` (RFC 1034 §4.3.2 step 3b), with glue (RFC 9471).
    mutating func referral(_ node: Int, owner: UnsafeRawBufferPointer, writer w: inout MessageWriter) {
        authoritative = w.u16(at: 6) > 0  // AA stays only for the aliases already answered
        let ns = zone.rrset(at: node, type: RRType.ns)
        guard writeRRset(ns, owner: owner, section: .authority, writer: &w) else {
            truncated = true
            return
        }
        // RFC 4035 §3.1.4: a signed zone's referral carries the DS; an unsigned zone has none to vouch for.
        if dnssecOK && zone.isSigned {
            let ds = zone.rrset(at: node, type: RRType.ds)
            if ds >= 0 && !writeRRset(ds, owner: owner, section: .authority, writer: &w) {
                truncated = true
                return
            }
        }
        let ownerCopy = owner
        _ = zone.forEachRecord(ns) { target in
            let inBailiwick = Name.isSubdomain(target, of: ownerCopy)
            // RFC 9471 §3: glue for names under the cut must fit, else TC; other glue is optional.
            if !addAddresses(of: target, allowOccluded: true, writer: &w) && inBailiwick {
                truncated = true
            }
            return true
        }
    }

    /// NXDOMAIN or NODATA: the zone's SOA in authority, TTL capped by its MINIMUM (RFC 2308 §3).
    mutating func negative(writer w: inout MessageWriter) {
        var minimum: UInt32 = 0
        _ = zone.forEachRecord(zone.soa) { rd in
            let m = rd.count - 4
            minimum = UInt32(rd[m]) << 24 | UInt32(rd[m + 1]) << 16 | UInt32(rd[m + 2]) << 8 | UInt32(rd[m + 3])
            return false
        }
        let ttl = min(zone.rrsets[zone.soa].ttl, minimum)
        let ok = zone.origin.withUnsafeBytes {
            writeRRset(zone.soa, owner: $0, section: .authority, ttl: ttl, writer: &w)
        }
        if !ok { truncated = true }
    }

    /// A/AAAA of in-zone targets of NS, MX and SRV answers (RFC 1035 §3.3.9, RFC 2782).
    mutating func additional(for rrset: Int, writer w: inout MessageWriter) {
        let type = zone.rrsets[rrset].type
        let skip: Int
        switch type {
        case RRType.ns: skip = 0
        case RRType.mx: skip = 2
        case RRType.srv: skip = 6
        default: return
        }
        _ = zone.forEachRecord(rrset) { rd in
            guard rd.count > skip else { return true }
            // Glue below a cut is added for MX and SRV targets too, as knot does.
            _ = addAddresses(of: UnsafeRawBufferPointer(rebasing: rd[skip...]), allowOccluded: true, writer: &w)
            return true
        }
    }

    /// Writes the A and AAAA RRsets of `target` to additional when it is in the zone. False if they did not fit.
    mutating func addAddresses(of target: UnsafeRawBufferPointer, allowOccluded: Bool, writer w: inout MessageWriter)
        -> Bool
    {
        let node = zone.find(target)
        guard node >= 0 else { return true }
        if !allowOccluded && zone.nodes[node].flags & Zone.Flag.occluded != 0 { return true }
        for i in 0..<extraCount where extraDone[i] == Int32(node) { return true }
        if extraCount < 16 {
            extraDone[extraCount] = Int32(node)
            extraCount += 1
        }
        let start = w.position
        let startCount = w.u16(at: 10)
        for type in [RRType.a, RRType.aaaa] {
            let r = zone.rrset(at: node, type: type)
            if r >= 0 && !writeRRset(r, owner: target, section: .additional, writer: &w) {
                w.rewind(to: start)
                w.setU16(startCount, at: 10)
                return false
            }
        }
        return true
    }

    /// Writes every record of an RRset, or nothing when it does not fit.
    mutating func writeRRset(
        _ rrset: Int, owner: UnsafeRawBufferPointer, section: MessageSection, ttl: UInt32? = nil,
        writer w: inout MessageWriter
    ) -> Bool {
        let set = zone.rrsets[rrset]
        let start = w.position
        let ttl = ttl ?? set.ttl
        let ok = zone.forEachRecord(rrset) { rd in
            w.writeRR(owner: owner, type: set.type, rrClass: RRClass.in, ttl: ttl, rdata: rd)
        }
        guard ok else {
            w.rewind(to: start)
            return false
        }
        w.incrementCount(section: section, by: Int(set.count))
        return true
    }
}
