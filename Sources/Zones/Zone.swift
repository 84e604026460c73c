import DNSWire

/// One authoritative zone, immutable once built, stored in flat arrays for fast, allocation-free lookup.
///
/// Every owner name and every empty non-terminal between an owner and the apex is a node. Nodes
/// are found through an open-addressing hash table keyed by the lower-case wire name, so a lookup
/// hashes bytes straight out of the query packet. RRsets keep their RDATA uncompressed in one
/// arena, each record prefixed by its 16-bit length.
public final class Zone: Sendable {
    /// A name in the zone.
    public struct Node: Sendable {
        public var nameStart: UInt32
        public var nameLength: UInt16
        public var flags: UInt16
        public var rrsetStart: UInt32
        public var rrsetCount: UInt32
    }

    /// One RRset: `count` records of one type at one node.
    public struct RRset: Sendable {
        public var type: UInt16
        public var count: UInt16
        public var ttl: UInt32
        public var dataStart: UInt32
        public var dataEnd: UInt32
    }

    /// Node flags, computed at load so the query path tests bits instead of scanning RRsets.
    public enum Flag {
        public static let apex: UInt16 = 1
        /// NS at a name other than the apex: a zone cut (RFC 1034 §4.2.1).
        public static let delegation: UInt16 = 2
        public static let cname: UInt16 = 4
        public static let dname: UInt16 = 8
        /// A child labelled `*` exists (RFC 4592).
        public static let wildcardChild: UInt16 = 16
        /// Below a zone cut: glue, served only as additional data.
        public static let occluded: UInt16 = 32
        /// A load-balanced name: its A/AAAA answers come from the steering policy.
        public static let steered: UInt16 = 64
    }

    public let origin: [UInt8]
    public let originText: String
    public let originLabels: Int
    public let names: [UInt8]
    public let nodes: [Node]
    public let rrsets: [RRset]
    public let data: [UInt8]
    let table: [Int32]
    let mask: Int
    /// Index of the apex node.
    public let apex: Int
    /// Index of the SOA RRset.
    public let soa: Int
    /// The SOA serial, for IXFR (RFC 1995).
    public let serial: UInt32
    /// Whether the zone is signed (a DNSKEY at the apex): only then do referrals carry DS, as in knot.
    public let isSigned: Bool

    init(
        origin: [UInt8], names: [UInt8], nodes: [Node], rrsets: [RRset], data: [UInt8], table: [Int32], apex: Int,
        soa: Int, serial: UInt32
    ) {
        self.origin = origin
        self.originText = DNSWire.Name.toText(origin)
        self.originLabels = DNSWire.Name.labelCount(origin)
        self.names = names
        self.nodes = nodes
        self.rrsets = rrsets
        self.data = data
        self.table = table
        self.mask = table.count - 1
        self.apex = apex
        self.soa = soa
        self.serial = serial
        var signed = false
        let a = nodes[apex]
        for r in Int(a.rrsetStart)..<Int(a.rrsetStart + a.rrsetCount) where rrsets[r].type == 48 { signed = true }
        self.isSigned = signed
    }

    /// A hash of the name in any case: eight octets at a time, upper case folded in the word,
    /// multiplied and folded (a multiply–xorshift, not FNV: one step per word, not per octet).
    @inline(__always)
    @usableFromInline static func hash(_ name: UnsafeRawBufferPointer) -> Int {
        // Eight octets at a time, ASCII upper case folded in the word (SWAR): any case, one hash.
        var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ UInt64(name.count)
        var i = 0
        let n = name.count
        while i + 8 <= n {
            h = (h ^ Self.folded(name.loadUnaligned(fromByteOffset: i, as: UInt64.self))) &* 0x9E37_79B9_7F4A_7C15
            h ^= h >> 32
            i += 8
        }
        var tail: UInt64 = 0
        while i < n {
            tail = tail << 8 | UInt64(name[i])
            i += 1
        }
        h = (h ^ Self.folded(tail)) &* 0x9E37_79B9_7F4A_7C15
        return Int(truncatingIfNeeded: h ^ (h >> 29))
    }

    /// `w` with every octet 0x41–0x5A ("A"–"Z") or'ed with 0x20, all eight at once.
    @inline(__always)
    static func folded(_ w: UInt64) -> UInt64 {
        let low7 = w & 0x7F7F_7F7F_7F7F_7F7F
        let atLeastA = low7 &+ 0x3F3F_3F3F_3F3F_3F3F  // top bit set where the octet's low 7 bits ≥ 0x41
        let pastZ = low7 &+ 0x2525_2525_2525_2525  // … ≥ 0x5B
        let upper = atLeastA & ~pastZ & ~w & 0x8080_8080_8080_8080  // and the octet itself < 0x80
        return w | upper >> 2
    }

    /// The node for a wire name (any case), or -1.
    @inline(__always)
    public func find(_ name: UnsafeRawBufferPointer) -> Int {
        var slot = Zone.hash(name) & mask
        return table.withUnsafeBufferPointer { t in
            names.withUnsafeBytes { n in
                while true {
                    let idx = Int(t[slot])
                    if idx < 0 { return -1 }
                    let node = nodes[idx]
                    if Int(node.nameLength) == name.count {
                        let stored = UnsafeRawBufferPointer(
                            rebasing: n[Int(node.nameStart)..<(Int(node.nameStart) + name.count)])
                        if DNSWire.Name.equal(stored, name) { return idx }
                    }
                    slot = (slot + 1) & mask
                }
            }
        }
    }

    /// The lower-case wire name of a node.
    public func name(of node: Int) -> ArraySlice<UInt8> {
        let n = nodes[node]
        return names[Int(n.nameStart)..<(Int(n.nameStart) + Int(n.nameLength))]
    }

    /// The RRset of `type` at `node`, or -1.
    @inline(__always)
    public func rrset(at node: Int, type: UInt16) -> Int {
        let n = nodes[node]
        var i = Int(n.rrsetStart)
        let end = i + Int(n.rrsetCount)
        while i < end {
            if rrsets[i].type == type { return i }
            i += 1
        }
        return -1
    }

    /// Calls `body` with the RDATA of each record of an RRset.
    @inline(__always)
    public func forEachRecord(_ rrset: Int, _ body: (UnsafeRawBufferPointer) -> Bool) -> Bool {
        let r = rrsets[rrset]
        return data.withUnsafeBytes { d in
            var i = Int(r.dataStart)
            let end = Int(r.dataEnd)
            while i < end {
                let len = Int(d[i]) << 8 | Int(d[i + 1])
                if !body(UnsafeRawBufferPointer(rebasing: d[(i + 2)..<(i + 2 + len)])) { return false }
                i += 2 + len
            }
            return true
        }
    }

    /// Number of records in the zone.
    public var recordCount: Int { rrsets.reduce(0) { $0 + Int($1.count) } }
}
