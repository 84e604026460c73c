import Foundation

/// A compiled location table: `1 << firstStride` entries, then blocks of 16. An entry with the top
/// bit set is a leaf (depth in bits 23–30, class in bits 0–22); otherwise the index of the block
/// that splits on the next 4 bits. Its memory is allocated once and never moves or changes, so
/// the query path may hold its address (`SteeringTable.prefetch`); tries configured alike share
/// one, freed with the last of them.
public final class LocationTable: @unchecked Sendable {
    let entries: UnsafeMutableBufferPointer<UInt32>
    let firstStride: Int

    init(_ t: [UInt32], firstStride: Int) {
        entries = .allocate(capacity: t.count)
        _ = entries.initialize(from: t)
        self.firstStride = firstStride
    }

    deinit { entries.deallocate() }

    /// Where a lookup of this table starts.
    @inline(__always)
    var probe: LocationProbe { LocationProbe(base: UnsafePointer(entries.baseAddress!), firstStride: firstStride) }
}

/// The first level of one location table, as `SteeringTable.prefetch` reads it: plain values, so
/// reading a list of them takes no references. `@unchecked Sendable`: the address points into an
/// immutable `LocationTable` that the same `SteeringTable` keeps alive.
@usableFromInline
struct LocationProbe: @unchecked Sendable {
    @usableFromInline let base: UnsafePointer<UInt32>?
    @usableFromInline let firstStride: Int

    init(base: UnsafePointer<UInt32>, firstStride: Int) {
        self.base = base
        self.firstStride = firstStride
    }

    /// An unused slot (never read: the counts beside the probes say how many are set).
    init() {
        base = nil
        firstStride = 0
    }

    /// The class of an address (IPv4 in the top 32 bits of `high`) and the depth it was decided at.
    @inlinable @inline(__always)
    func locate(high: UInt64, low: UInt64) -> (cls: Int, depth: Int) {
        let t = base.unsafelyUnwrapped
        var e = t[Int(truncatingIfNeeded: high >> UInt64(truncatingIfNeeded: 64 &- firstStride))]
        var at = firstStride
        while e & LocationTrie.leafBit == 0 {
            // Levels start at multiples of 4: a level's 4 bits never straddle `high` and `low`.
            let word = at < 64 ? high : low
            e = t[Int(e) &+ Int(truncatingIfNeeded: (word << UInt64(truncatingIfNeeded: at & 63)) >> 60)]
            at &+= 4
        }
        return (Int(e & LocationTrie.classMask), Int((e >> LocationTrie.classBits) & 0xFF))
    }

    /// The first-level entry an address reads.
    @inlinable @inline(__always)
    func first(_ high: UInt64) -> UnsafePointer<UInt32> {
        base.unsafelyUnwrapped + Int(truncatingIfNeeded: high >> UInt64(truncatingIfNeeded: 64 &- firstStride))
    }

    /// The entry of the second level an address reads, or nil when the first level holds its leaf.
    /// Reads the first-level entry: meant for when an earlier prefetch has brought it in.
    @inlinable @inline(__always)
    func second(_ high: UInt64) -> UnsafePointer<UInt32>? {
        let e = first(high).pointee
        guard e & LocationTrie.leafBit == 0 else { return nil }
        return base.unsafelyUnwrapped
            + (Int(e) &+ Int(truncatingIfNeeded: (high << UInt64(truncatingIfNeeded: firstStride)) >> 60))
    }
}
