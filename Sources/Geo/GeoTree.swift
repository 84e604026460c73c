/// A database's search tree, read in place from the mapped file (MaxMind DB spec, "Search Tree
/// Section"): nodes of two records of 24, 28 or 32 bits. Valid while its `GeoDatabase` lives.
///
/// A branch is a code: below `nodeCount` a node, `GeoTree.empty` no data, and `recordBit | rank`
/// the data record of that rank (its index in file order, as `GeoLocations.ofRecord` counts).
public struct GeoTree: @unchecked Sendable {
    let base: UnsafePointer<UInt8>
    let recordBits: Int
    let nodeBytes: Int
    public let nodeCount: UInt32
    var offsets = DataOffsets(size: 0)

    public static let empty: UInt32 = .max
    public static let recordBit: UInt32 = 1 << 31

    init(base: UnsafePointer<UInt8>, recordBits: Int, nodeCount: UInt32) {
        self.base = base
        self.recordBits = recordBits
        nodeBytes = recordBits / 4
        self.nodeCount = nodeCount
    }

    /// The two record values of node `n` (below `nodeCount`) as stored.
    @inline(__always)
    func raw(_ n: UInt32) -> (UInt32, UInt32) {
        let p = base + Int(n) * nodeBytes
        @inline(__always) func be(_ at: Int, _ count: Int) -> UInt32 {
            var v: UInt32 = 0
            for i in 0..<count { v = v << 8 | UInt32(p[at + i]) }
            return v
        }
        switch recordBits {
        case 24: return (be(0, 3), be(3, 3))
        case 28: return (UInt32(p[3] & 0xF0) << 20 | be(0, 3), UInt32(p[3] & 0x0F) << 24 | be(4, 3))
        default: return (be(0, 4), be(4, 4))
        }
    }

    /// The two branches (bit 0, bit 1) of node `n`, as codes.
    @inline(__always)
    public func branches(_ n: UInt32) -> (UInt32, UInt32) {
        let (l, r) = raw(n)
        return (code(l), code(r))
    }

    @inline(__always)
    private func code(_ value: UInt32) -> UInt32 {
        if value < nodeCount { return value }
        if value == nodeCount { return Self.empty }
        // The walk at open checked every reachable pointer; anything else reads as no data.
        guard let rank = offsets.rank(Int(value - nodeCount) - 16) else { return Self.empty }
        return Self.recordBit | UInt32(truncatingIfNeeded: rank)
    }

    /// The node where IPv4 addresses start in an IPv6 tree (the end of ::/96), or the code met
    /// instead when that path leaves the tree early.
    public var ipv4Start: UInt32 {
        var b: UInt32 = 0
        for _ in 0..<96 {
            guard b < nodeCount else { return b }
            b = branches(b).0
        }
        return b
    }
}
