/// Checks a MaxMind database whole before it is used, as MaxMind's own Go reader's `Verify` does:
/// a file that libmaxminddb opens can still be damaged (a half-written update, two files run
/// together) and then answer some addresses wrongly instead of failing.
///
/// - the search tree's size fits the file, and the 16-octet separator after it is zero;
/// - every data pointer of the tree lands inside the data section;
/// - the data section decodes value after value from its first octet to the metadata marker, every
///   value well formed (known types, sizes within bounds, map keys strings, pointers to the start of
///   a value that is not itself a pointer, nesting at most `maxDepth`);
/// - every top-level value is one the tree or a pointer points to (the Go reader wants the tree's;
///   writers such as Python's mmdb-writer put shared keys first, reached only by pointers), and
///   every record the tree points to is found.
///
/// Pure: works on the octets of the file, whoever mapped them. Bounded: one pass over the data
/// section plus one bit per octet of it.
package struct MMDBVerifier {
    /// Nesting of maps and arrays beyond this is damage (libmaxminddb and the Go reader stop at 512).
    static let maxDepth = 512
    /// Octets of the marker before the metadata: 0xAB 0xCD 0xEF "MaxMind.com".
    static let markerLength = 14

    let data: UnsafeRawBufferPointer
    /// Starts of every value decoded (nested ones too): pointer targets must be one of them.
    private let starts: Bitmap
    /// Pointer targets seen (a bit per octet), checked against `starts` at the end.
    private let targets: Bitmap

    package struct Failure: Error, CustomStringConvertible {
        package var description: String
    }

    private init(data: UnsafeRawBufferPointer) {
        self.data = data
        starts = Bitmap(bits: data.count)
        targets = Bitmap(bits: data.count)
    }

    /// Verifies the separator after the search tree and the data section `dataSection` (up to the
    /// metadata marker). `treeOffsets` are the data offsets the search tree points to (the caller
    /// has walked the tree, and sealed them).
    package static func verify(
        separator: UnsafeRawBufferPointer,
        dataSection: UnsafeRawBufferPointer, treeOffsets pointed: DataOffsets
    ) throws {
        guard separator.count == 16, separator.allSatisfy({ $0 == 0 }) else {
            throw Failure(description: "the 16 octets after the search tree are not zero (a damaged or truncated file)")
        }
        guard pointed.size <= dataSection.count else {
            throw Failure(description: "the search tree points past the data section (\(dataSection.count) octets)")
        }
        // The data section is checked in parts on every core, each from a record the tree points
        // to: in a sound file every such record starts a top-level value, so each part's last
        // value ends exactly where the next part begins (one that runs over is damage).
        let size = dataSection.count
        var bounds = [0]
        let count = Parallel.parts(size, minimum: 4 << 20)
        for k in 1..<max(1, count) {
            if let b = pointed.first(atOrAfter: size * k / count), b > bounds.last! { bounds.append(b) }
        }
        bounds.append(size)
        let data = UncheckedBuffer(buffer: dataSection)
        let edges = bounds
        let parts = Parallel.map(edges.count - 1) { k in
            Result { () throws -> (MMDBVerifier, seen: Int, unreferenced: [Int]) in
                var v = MMDBVerifier(data: data.buffer)
                var offset = edges[k]
                var seen = 0
                var unreferenced: [Int] = []
                while offset < edges[k + 1] {
                    let start = offset
                    if pointed.contains(start) { seen += 1 } else { unreferenced.append(start) }
                    offset = try v.value(at: offset, depth: 0)
                }
                guard offset == edges[k + 1] else {
                    throw Failure(
                        description:
                            "the value before offset \(offset) runs over the record at offset \(edges[k + 1]) (a damaged file)"
                    )
                }
                return (v, seen, unreferenced)
            }
        }
        let v = try parts[0].get().0
        var seen = 0
        var unreferenced: [Int] = []
        for (k, part) in parts.enumerated() {
            let (w, s, u) = try part.get()
            seen += s
            unreferenced += u
            if k > 0 {
                for i in v.starts.words.indices {
                    v.starts.words[i] |= w.starts.words[i]
                    v.targets.words[i] |= w.targets.words[i]
                }
            }
        }
        for start in unreferenced where !v.targets.get(start) {
            throw Failure(
                description: "data at offset \(start) that nothing points to (two files run together, or garbage)")
        }
        guard seen == pointed.count else {
            throw Failure(
                description:
                    "the search tree points to \(pointed.count) records, the data section holds \(seen) of them")
        }
        for (i, word) in v.targets.words.enumerated() where word & ~v.starts.words[i] != 0 {
            let t = i * 64 + (word & ~v.starts.words[i]).trailingZeroBitCount
            throw Failure(description: "a pointer to offset \(t), which is not the start of a value")
        }
    }

    /// The type and size of the value whose control byte is at `at`, and where its payload starts.
    @inline(__always)
    private func header(_ at: Int) throws -> (type: Int, size: Int, payload: Int) {
        if let h = MMDBFormat.header(data, at) { return h }
        if at >= 0, at + 1 < data.count, data[at] >> 5 == 0 {
            throw Failure(description: "unknown extended type \(data[at + 1]) at offset \(at)")
        }
        throw Failure(description: "a value runs past the end of the data section at offset \(at)")
    }

    /// Decodes the value at `at` (checking everything in it) and returns the offset after it.
    private mutating func value(at: Int, depth: Int) throws -> Int {
        guard depth <= Self.maxDepth else {
            throw Failure(description: "values nested deeper than \(Self.maxDepth) at offset \(at)")
        }
        starts.set(at)
        let (type, size, payload) = try header(at)
        func fixed(_ limit: Int, _ exact: Bool = false) throws -> Int {
            guard exact ? size == limit : size <= limit else {
                throw Failure(description: "a value of type \(type) with size \(size) at offset \(at)")
            }
            guard size <= data.count - payload else {
                throw Failure(description: "a value runs past the end of the data section at offset \(at)")
            }
            return payload + size
        }
        switch type {
        case 1:
            return try pointer(at: at, control: size, key: false)
        case 2, 4:  // UTF-8 string, bytes
            guard size <= data.count - payload else {
                throw Failure(description: "a string runs past the end of the data section at offset \(at)")
            }
            return payload + size
        case 3: return try fixed(8, true)  // double
        case 15: return try fixed(4, true)  // float
        case 5: return try fixed(2)  // uint16
        case 6, 8: return try fixed(4)  // uint32, int32
        case 9: return try fixed(8)  // uint64
        case 10: return try fixed(16)  // uint128
        case 14:  // boolean: the size is the value
            guard size <= 1 else { throw Failure(description: "a boolean of value \(size) at offset \(at)") }
            return payload
        case 7:  // map: `size` pairs of a string key and a value
            var next = payload
            for _ in 0..<size {
                next = try key(at: next)
                next = try value(at: next, depth: depth + 1)
            }
            return next
        case 11:  // array
            var next = payload
            for _ in 0..<size { next = try value(at: next, depth: depth + 1) }
            return next
        default:  // 12 (data cache container) and 13 (end marker) never appear in a data section
            throw Failure(description: "a value of type \(type) at offset \(at), which a data section never holds")
        }
    }

    /// A map key: a string, or a pointer to one.
    private mutating func key(at: Int) throws -> Int {
        starts.set(at)
        let (type, size, payload) = try header(at)
        if type == 1 { return try pointer(at: at, control: size, key: true) }
        guard type == 2 else {
            throw Failure(description: "a map key of type \(type) at offset \(at) (keys are strings)")
        }
        guard size <= data.count - payload else {
            throw Failure(description: "a key runs past the end of the data section at offset \(at)")
        }
        return payload + size
    }

    /// A pointer (RFC-like layout of the MaxMind DB spec, "Pointer - 1"): its target must be inside
    /// the data section, not a pointer, and a string when it stands for a key.
    private mutating func pointer(at: Int, control: Int, key: Bool) throws -> Int {
        guard let (target, next) = MMDBFormat.pointer(data, at, control: control) else {
            throw Failure(description: "a value runs past the end of the data section at offset \(at)")
        }
        guard target < data.count else {
            throw Failure(
                description: "a pointer at offset \(at) to \(target), past the data section (\(data.count) octets)")
        }
        let (type, _, _) = try header(target)
        guard type != 1 else { throw Failure(description: "a pointer at offset \(at) to another pointer") }
        guard !key || type == 2 else {
            throw Failure(description: "a map key at offset \(at) points to a value of type \(type)")
        }
        targets.set(target)
        return next
    }
}

/// The data section handed to the parts of a check (it is only read).
private struct UncheckedBuffer: @unchecked Sendable {
    let buffer: UnsafeRawBufferPointer
}
