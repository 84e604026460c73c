/// Bits in memory of its own, written without the copy-on-write checks of an array: the tree
/// walk marks a bit per node, the data check two per value of the data section.
final class Bitmap: @unchecked Sendable {
    let words: UnsafeMutableBufferPointer<UInt64>

    init(bits: Int) {
        words = .allocate(capacity: bits / 64 + 1)
        words.initialize(repeating: 0)
    }

    deinit { words.deallocate() }

    @inline(__always) func set(_ i: Int) { words[i >> 6] |= 1 << UInt64(i & 63) }
    @inline(__always) func get(_ i: Int) -> Bool { words[i >> 6] & (1 << UInt64(i & 63)) != 0 }
}
