/// Where each label of a wire name starts, so suffixes (ancestors) are found without parsing twice.
///
/// Index 0 is the first (leftmost) label; a 255-octet name has at most 127 labels.
///
/// Not copyable: 136 octets on the query path are lent (`borrowing`), never copied, which the
/// compiler otherwise did at each call (`memcpy` twice per query).
public struct LabelOffsets: ~Copyable {
    @usableFromInline var storage = InlineArray<128, UInt8>(repeating: 0)
    @usableFromInline var labelCount = 0
    /// Labels before the root.
    @inlinable public var count: Int { labelCount }

    @inlinable public init() {}

    /// The offsets of `name` (uncompressed, well-formed).
    @inlinable @inline(__always)
    public init(_ name: UnsafeRawBufferPointer) {
        compute(name)
    }

    /// Fills the offsets for an uncompressed, well-formed name.
    @inlinable @inline(__always)
    public mutating func compute(_ name: UnsafeRawBufferPointer) {
        var i = 0
        labelCount = 0
        while i < name.count, name[i] != 0, labelCount < 128 {
            storage[labelCount] = UInt8(truncatingIfNeeded: i)
            labelCount += 1
            i += Int(name[i]) + 1
        }
    }

    /// Offset of label `k` (k == count gives the root label's offset).
    @inlinable @inline(__always)
    public subscript(k: Int) -> Int {
        Int(storage[k])
    }

    /// The suffix of `name` holding its last `labels` labels.
    @inlinable @inline(__always)
    public func suffix(_ name: UnsafeRawBufferPointer, labels: Int) -> UnsafeRawBufferPointer {
        let start = labels >= count ? 0 : (labels == 0 ? name.count - 1 : Int(storage[count - labels]))
        return UnsafeRawBufferPointer(rebasing: name[start...])
    }
}
