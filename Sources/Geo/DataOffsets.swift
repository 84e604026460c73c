/// The data-section offsets a database's search tree points to, as one bit per octet of the data
/// section, with a running count per 64-bit word: membership and an offset's rank (its index
/// among the records, in file order) each cost two reads, and nothing is hashed or sorted.
public struct DataOffsets: Sendable {
    private var bits: [UInt64]
    /// Set bits in all words before each word.
    private var before: [UInt32] = []
    /// Octets of the data section the bits cover.
    public let size: Int
    /// Distinct offsets marked (valid after `seal()`).
    public private(set) var count = 0

    init(size: Int) {
        self.size = size
        bits = [UInt64](repeating: 0, count: size / 64 + 1)
    }

    /// Marks an offset (below `size`).
    mutating func insert(_ offset: Int) {
        bits[offset >> 6] |= 1 << UInt64(offset & 63)
    }

    /// Counts the offsets and builds the ranks: after the last `insert`.
    mutating func seal() {
        before = [UInt32](repeating: 0, count: bits.count)
        var total = 0
        for (i, w) in bits.enumerated() {
            before[i] = UInt32(truncatingIfNeeded: total)
            total += w.nonzeroBitCount
        }
        count = total
    }

    public func contains(_ offset: Int) -> Bool {
        offset >= 0 && offset < size && bits[offset >> 6] & (1 << UInt64(offset & 63)) != 0
    }

    /// The index among the offsets (in file order) of a marked offset, or nil.
    @inline(__always)
    public func rank(_ offset: Int) -> Int? {
        guard contains(offset) else { return nil }
        let w = bits[offset >> 6] & ((1 << UInt64(offset & 63)) &- 1)
        return Int(before[offset >> 6]) &+ w.nonzeroBitCount
    }

    /// The first marked offset at or after `offset`, or nil.
    public func first(atOrAfter offset: Int) -> Int? {
        guard offset >= 0, offset < size else { return nil }
        var i = offset >> 6
        var w = bits[i] & ~((1 << UInt64(offset & 63)) &- 1)
        while w == 0 {
            i += 1
            guard i < bits.count else { return nil }
            w = bits[i]
        }
        return i << 6 | w.trailingZeroBitCount
    }

    /// Every marked offset, ascending.
    public var ascending: [Int] {
        var out: [Int] = []
        out.reserveCapacity(count)
        for (i, word) in bits.enumerated() where word != 0 {
            var w = word
            while w != 0 {
                out.append(i << 6 | w.trailingZeroBitCount)
                w &= w &- 1
            }
        }
        return out
    }
}
