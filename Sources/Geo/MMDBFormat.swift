/// The MaxMind DB data format's framing ("Output data section"), read bounds-checked from a data
/// section: what `MMDBVerifier` (which throws, naming what is wrong) and `MMDBDecoder` (which
/// takes damage as a missing field) both read.
enum MMDBFormat {
    /// Type, size and payload offset of the value whose control byte is at `at`; a pointer (type 1)
    /// keeps its control byte as its size. Nil when the header runs past the end, or an extended
    /// type is not one of 8…15.
    @inline(__always)
    static func header(_ data: UnsafeRawBufferPointer, _ at: Int) -> (type: Int, size: Int, payload: Int)? {
        guard at >= 0, at < data.count else { return nil }
        let control = Int(data[at])
        var type = control >> 5
        var next = at + 1
        if type == 1 { return (1, control, next) }
        if type == 0 {
            guard next < data.count else { return nil }
            type = Int(data[next]) + 7
            next += 1
            guard type >= 8 && type <= 15 else { return nil }
        }
        var size = control & 0x1F
        if size >= 29 {
            let n = size - 28
            guard let v = bigEndian(data, next, n) else { return nil }
            size = (n == 1 ? 29 : n == 2 ? 285 : 65_821) + Int(v)
            next += n
        }
        return (type, size, next)
    }

    /// The target of the pointer whose control byte `control` is at `at` ("Pointer - 1"), and the
    /// offset after the pointer; nil when it runs past the end.
    @inline(__always)
    static func pointer(_ data: UnsafeRawBufferPointer, _ at: Int, control: Int) -> (target: Int, next: Int)? {
        let ss = (control >> 3) & 3
        let vvv = control & 7
        guard let v = bigEndian(data, at + 1, ss + 1) else { return nil }
        let target: Int
        switch ss {
        case 0: target = vvv << 8 | Int(v)
        case 1: target = (vvv << 16 | Int(v)) + 2048
        case 2: target = (vvv << 24 | Int(v)) + 526_336
        default: target = Int(v)
        }
        return (target, at + 2 + ss)
    }

    /// Big-endian unsigned of `count` (at most 8) octets at `at`.
    @inline(__always)
    static func bigEndian(_ data: UnsafeRawBufferPointer, _ at: Int, _ count: Int) -> UInt64? {
        guard at >= 0, count <= 8, count <= data.count - at else { return nil }
        var v: UInt64 = 0
        for i in 0..<count { v = v << 8 | UInt64(data[at + i]) }
        return v
    }
}
