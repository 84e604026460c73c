/// Where each label of a wire name starts, so suffixes (ancestors) are found without parsing twice.
///
/// Index 0 is the first (leftmost) label; a 255-octet name has at most 127 labels.
public struct LabelOffsets {
    private var storage = InlineArray<128, UInt8>(repeating: 0)
    public private(set) var count = 0

    public init() {}

    /// Fills the offsets for an uncompressed, well-formed name.
    @inline(__always)
    public mutating func compute(_ name: UnsafeRawBufferPointer) {
        var i = 0
        count = 0
        while i < name.count, name[i] != 0, count < 128 {
            storage[count] = UInt8(truncatingIfNeeded: i)
            count += 1
            i += Int(name[i]) + 1
        }
    }

    /// Offset of label `k` (k == count gives the root label's offset).
    @inline(__always)
    public subscript(k: Int) -> Int {
        Int(storage[k])
    }

    /// The suffix of `name` holding its last `labels` labels.
    @inline(__always)
    public func suffix(_ name: UnsafeRawBufferPointer, labels: Int) -> UnsafeRawBufferPointer {
        let start = labels >= count ? 0 : (labels == 0 ? name.count - 1 : Int(storage[count - labels]))
        return UnsafeRawBufferPointer(rebasing: name[start...])
    }
}
