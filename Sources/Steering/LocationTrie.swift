import Foundation

/// A binary trie over one address family whose leaves are location classes, merged so that a
/// leaf is the largest network with one class (gdnsd's semantics for the ECS scope): the depth
/// of the leaf a client reaches is the answer's scope prefix.
///
/// Queries do not walk the binary trie bit by bit: `compile()` expands it into a multibit table
/// (controlled prefix expansion) whose first level takes 4–16 bits and every further level 4, so
/// that a client costs two or three memory reads instead of twenty (each of them a cache miss
/// when clients come from everywhere). Every table entry keeps the depth of the binary leaf it
/// expands, so the scope stays the merged network's length.
public struct LocationTrie: Sendable {
    /// Two child codes per node; a code with the top bit set is a leaf holding a class index.
    /// Emptied by `compile()` once the table holds the same map.
    var nodes: [UInt32] = []
    var root: UInt32 = LocationTrie.leafBit
    @usableFromInline static let leafBit: UInt32 = 1 << 31
    /// The multibit table (nil before `compile()` or when it kept the binary trie).
    var table: LocationTable?
    /// Binary nodes of the trie as built (before `compile()`).
    public private(set) var nodeCount = 0
    /// Whether lookups read the table.
    public var compiled: Bool { table != nil }
    @usableFromInline static let classBits: UInt32 = 23
    @usableFromInline static let classMask: UInt32 = 1 << classBits - 1

    /// The class of an address (IPv4 in the top 32 bits of `high`) and the depth it was decided at.
    @inline(__always)
    public func locate(high: UInt64, low: UInt64) -> (cls: Int, depth: Int) {
        guard let table else { return walk(high: high, low: low) }
        return table.probe.locate(high: high, low: low)
    }

    /// The same answer from the binary trie, one bit per step (before `compile()`, or when classes
    /// do not fit a table entry).
    public func walk(high: UInt64, low: UInt64) -> (cls: Int, depth: Int) {
        nodes.withUnsafeBufferPointer { n in
            var code = root
            var depth = 0
            // The address as one 128-bit stream, shifted left one bit per level.
            var h = high
            var l = low
            while code & Self.leafBit == 0 {
                code = n[Int(code) &* 2 &+ Int(truncatingIfNeeded: h >> 63)]
                h = h << 1 | l >> 63
                l <<= 1
                depth &+= 1
            }
            return (Int(code & ~Self.leafBit), depth)
        }
    }

    /// Renumbers the classes of the leaves (before `compile()`).
    mutating func remapLeaves(_ map: (UInt32) -> UInt32) {
        func remap(_ code: UInt32) -> UInt32 {
            code & Self.leafBit != 0 ? Self.leafBit | map(code & ~Self.leafBit) : code
        }
        root = remap(root)
        for i in nodes.indices { nodes[i] = remap(nodes[i]) }
    }

    /// Expands the binary trie into the table and drops the nodes. Keeps the binary trie when a class
    /// index does not fit an entry (more than 8 million classes).
    public mutating func compile(classes: Int) {
        nodeCount = nodes.count / 2
        guard classes <= Int(Self.classMask) + 1 else { return }
        // The first level no larger than the trie (at most 65,536 entries, 256 KiB).
        var first = 4
        while first < 16 && 1 << (first + 4) <= nodeCount { first += 4 }
        var t = [UInt32](repeating: 0, count: 1 << first)
        let nodes = self.nodes
        // Fills entries [index << bits, (index + 1) << bits) of the block at `block` from the binary
        // node `code` at `depth`, with `bits` of the level still to split on.
        func expand(_ code: UInt32, depth: Int, block: Int, index: Int, bits: Int) {
            if code & Self.leafBit != 0 {
                let entry = Self.leafBit | UInt32(depth) << Self.classBits | (code & ~Self.leafBit)
                for i in (index << bits)..<((index + 1) << bits) { t[block + i] = entry }
            } else if bits == 0 {
                let next = t.count
                t.append(contentsOf: repeatElement(0, count: 16))
                t[block + index] = UInt32(next)
                expand(code, depth: depth, block: next, index: 0, bits: 4)
            } else {
                expand(nodes[Int(code) * 2], depth: depth + 1, block: block, index: index << 1, bits: bits - 1)
                expand(nodes[Int(code) * 2 + 1], depth: depth + 1, block: block, index: index << 1 | 1, bits: bits - 1)
            }
        }
        expand(root, depth: 0, block: 0, index: 0, bits: first)
        table = LocationTable(t, firstStride: first)
        self.nodes = []
    }
}
