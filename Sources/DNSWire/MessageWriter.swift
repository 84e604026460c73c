import Glibc

/// Builds a DNS message in a caller-owned buffer, with name compression (RFC 1035 §4.1.4).
///
/// The writer never allocates: compression targets live in a fixed inline table. Every write
/// returns false instead of writing past `limit`, leaving the message as it was, so the caller
/// can stop at a whole-RRset boundary and set TC.
public struct MessageWriter {
    public let base: UnsafeMutableRawPointer
    /// The size the message may not exceed (512, the EDNS payload, or 65535 over TCP).
    public var limit: Int
    /// Settable only so that the small writers below can be `@inlinable` (inlined into other modules);
    /// move it with `rewind(to:)`.
    public var position: Int = 0
    /// Offsets of label sequences already in the message, usable as pointer targets.
    /// 64 entries cover a full referral with glue; later names are simply written uncompressed.
    private var targets = InlineArray<64, UInt16>(repeating: 0)
    private var targetCount = 0
    /// The question name's offset (the first name registered), or -1. Its labels are targets
    /// too, found by walking the name itself rather than copied into `targets`: an answer owned
    /// by the question needs none of them (the fast path of `writeName`).
    private var question = -1

    public init(base: UnsafeMutableRawPointer, limit: Int) {
        self.base = base
        self.limit = limit
    }

    @inlinable @inline(__always)
    public func byte(at i: Int) -> UInt8 { base.load(fromByteOffset: i, as: UInt8.self) }

    @inlinable @inline(__always)
    public mutating func setU16(_ v: UInt16, at i: Int) {
        base.storeBytes(of: v.bigEndian, toByteOffset: i, as: UInt16.self)
    }

    @inlinable @inline(__always)
    public func u16(at i: Int) -> UInt16 {
        UInt16(byte(at: i)) << 8 | UInt16(byte(at: i + 1))
    }

    /// Moves back to an earlier position (dropping compression targets written after it).
    public mutating func rewind(to pos: Int) {
        position = pos
        if question >= pos { question = -1 }
        while targetCount > 0 && Int(targets[targetCount - 1]) >= pos { targetCount -= 1 }
    }

    @inlinable @inline(__always)
    public mutating func appendU16(_ v: UInt16) -> Bool {
        guard position + 2 <= limit else { return false }
        setU16(v, at: position)
        position += 2
        return true
    }

    @inlinable @inline(__always)
    public mutating func appendU32(_ v: UInt32) -> Bool {
        guard position + 4 <= limit else { return false }
        base.storeBytes(of: v.bigEndian, toByteOffset: position, as: UInt32.self)
        position += 4
        return true
    }

    @inlinable @inline(__always)
    public mutating func appendByte(_ v: UInt8) -> Bool {
        guard position + 1 <= limit else { return false }
        base.storeBytes(of: v, toByteOffset: position, as: UInt8.self)
        position += 1
        return true
    }

    @inlinable @inline(__always)
    public mutating func append(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard position + bytes.count <= limit else { return false }
        if let src = bytes.baseAddress, bytes.count > 0 {
            (base + position).copyMemory(from: src, byteCount: bytes.count)
        }
        position += bytes.count
        return true
    }

    /// Writes the 12-octet header with all counts zero.
    public mutating func writeHeader(id: UInt16, flags: UInt16) -> Bool {
        guard limit >= 12 else { return false }
        setU16(id, at: 0)
        setU16(flags, at: 2)
        setU16(0, at: 4)
        setU16(0, at: 6)
        setU16(0, at: 8)
        setU16(0, at: 10)
        position = 12
        return true
    }

    /// Registers every label of an uncompressed name already written at `offset` as a target.
    /// The first name registered is taken as the question (see `question`).
    public mutating func registerName(at offset: Int) {
        if question < 0 && targetCount == 0 && offset < 0x4000 {
            question = offset
            return
        }
        var i = offset
        while byte(at: i) != 0 && byte(at: i) & 0xC0 == 0 {
            if targetCount < 64 && i < 0x4000 {
                targets[targetCount] = UInt16(i)
                targetCount += 1
            }
            i += Int(byte(at: i)) + 1
        }
    }

    /// The first target, among the question's labels and then `targets[..<count]`, that holds
    /// `name[from...]`; -1 when none does.
    @inline(__always)
    private func target(for name: UnsafeRawBufferPointer, from: Int, among count: Int) -> Int {
        if question >= 0 {
            var q = question
            while byte(at: q) != 0 && byte(at: q) & 0xC0 == 0 {
                if matches(q, name, from: from) { return q }
                q += Int(byte(at: q)) + 1
            }
        }
        for t in 0..<count where matches(Int(targets[t]), name, from: from) { return Int(targets[t]) }
        return -1
    }

    /// Whether the name in the message at `offset` (following pointers) equals `name[from...]`.
    @inline(__always)
    private func matches(_ offset: Int, _ name: UnsafeRawBufferPointer, from: Int) -> Bool {
        var m = offset
        var n = from
        var hops = 0
        while true {
            guard m < position else { return false }  // only complete, written names are targets
            var len = Int(byte(at: m))
            while len & 0xC0 == 0xC0 {
                hops += 1
                if hops > 32 { return false }
                m = (len & 0x3F) << 8 | Int(byte(at: m + 1))
                guard m < position else { return false }
                len = Int(byte(at: m))
            }
            let nlen = Int(name[n])
            if len != nlen { return false }
            if len == 0 { return true }
            if memcmp(base + m + 1, name.baseAddress! + n + 1, len) != 0 {
                for k in 1...len {
                    let x = byte(at: m + k)
                    let y = name[n + k]
                    if x != y && ((x &- 65) < 26 ? x | 0x20 : x) != ((y &- 65) < 26 ? y | 0x20 : y) { return false }
                }
            }
            m += len + 1
            n += len + 1
        }
    }

    /// Writes a wire name, compressing against earlier names when `compress` is set.
    ///
    /// The labels written here become compression targets only once the whole name is in place:
    /// matching a later suffix of the same name against a half-written one would read octets not
    /// yet written (stale bytes of an earlier response in a reused buffer).
    public mutating func writeName(_ name: UnsafeRawBufferPointer, compress: Bool = true) -> Bool {
        let start = position
        // The common case: the name is, octet for octet, the question (an answer's owner). An
        // uncompressed name there equal in every octet is the same name.
        if compress && question >= 0 && question + name.count <= position
            && memcmp(base + question, name.baseAddress!, name.count) == 0
        {
            return appendU16(0xC000 | UInt16(question))
        }
        let firstNew = targetCount
        var newLabels = InlineArray<8, UInt16>(repeating: 0)
        var newCount = 0
        var i = 0
        var done = false
        while !done {
            let len = Int(name[i])
            if len == 0 {
                guard appendByte(0) else {
                    rewind(to: start)
                    return false
                }
                done = true
                break
            }
            if compress {
                let found = target(for: name, from: i, among: firstNew)
                if found >= 0 {
                    guard appendU16(0xC000 | UInt16(found)) else {
                        rewind(to: start)
                        return false
                    }
                    done = true
                    break
                }
            }
            guard position + len + 1 <= limit else {
                rewind(to: start)
                return false
            }
            if compress && newCount < 8 && position < 0x4000 {
                newLabels[newCount] = UInt16(position)
                newCount += 1
            }
            _ = append(UnsafeRawBufferPointer(rebasing: name[i..<(i + len + 1)]))
            i += len + 1
        }
        for k in 0..<newCount where targetCount < 64 {
            targets[targetCount] = newLabels[k]
            targetCount += 1
        }
        return true
    }

    /// Writes a pointer to an offset known to hold a name (e.g. 12, the question name).
    @inline(__always)
    public mutating func writePointer(to offset: Int) -> Bool {
        appendU16(0xC000 | UInt16(offset))
    }

    /// Writes RDATA for `type`, compressing embedded names where RFC 3597 §4 allows.
    ///
    /// `rdata` is the uncompressed wire RDATA. Returns false when it does not fit.
    public mutating func writeRDATA(type: UInt16, _ rdata: UnsafeRawBufferPointer) -> Bool {
        let lengthAt = position
        guard appendU16(0) else { return false }
        let ok: Bool
        if RRType.hasCompressibleRDATA(type) {
            ok = writeCompressibleRDATA(type: type, rdata)
        } else {
            ok = append(rdata)
        }
        guard ok else {
            rewind(to: lengthAt)
            return false
        }
        setU16(UInt16(position - lengthAt - 2), at: lengthAt)
        return true
    }

    private mutating func writeCompressibleRDATA(type: UInt16, _ rdata: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        func name(_ w: inout MessageWriter) -> Bool {
            guard let len = QueryParser.plainNameLength(rdata, at: i) else { return false }
            let ok = w.writeName(UnsafeRawBufferPointer(rebasing: rdata[i..<(i + len)]))
            i += len
            return ok
        }
        switch type {
        case RRType.mx:
            guard rdata.count >= 3, append(UnsafeRawBufferPointer(rebasing: rdata[0..<2])) else { return false }
            i = 2
            return name(&self) && i == rdata.count
        case RRType.soa:
            guard name(&self), name(&self), rdata.count - i == 20 else { return false }
            return append(UnsafeRawBufferPointer(rebasing: rdata[i...]))
        case RRType.minfo:
            return name(&self) && name(&self) && i == rdata.count
        default:
            return name(&self) && i == rdata.count
        }
    }

    /// Writes one resource record (owner compressed, RDATA compressed where allowed), or nothing.
    public mutating func writeRR(
        owner: UnsafeRawBufferPointer, type: UInt16, rrClass: UInt16, ttl: UInt32,
        rdata: UnsafeRawBufferPointer
    ) -> Bool {
        let start = position
        guard writeName(owner), appendU16(type), appendU16(rrClass), appendU32(ttl), writeRDATA(type: type, rdata)
        else {
            rewind(to: start)
            return false
        }
        return true
    }

    /// Increments one of the four section counts.
    @inlinable @inline(__always)
    public mutating func incrementCount(section: MessageSection, by n: Int = 1) {
        let at = 4 + 2 * section.rawValue
        setU16(u16(at: at) &+ UInt16(n), at: at)
    }

    /// Sets bits in the second header word.
    @inlinable @inline(__always)
    public mutating func setFlags(_ bits: UInt16) {
        setU16(u16(at: 2) | bits, at: 2)
    }

    /// Replaces the rcode bits of the header.
    @inlinable @inline(__always)
    public mutating func setRcode(_ rcode: UInt16) {
        setU16((u16(at: 2) & ~HeaderFlags.rcodeMask) | (rcode & HeaderFlags.rcodeMask), at: 2)
    }
}

/// The four sections of a message, in order; the header counts them at octets 4, 6, 8 and 10.
public enum MessageSection: Int, Sendable {
    case question = 0
    case answer, authority, additional
}

/// Bits of the second header word.
public enum HeaderFlags {
    public static let qr: UInt16 = 0x8000
    public static let aa: UInt16 = 0x0400
    public static let tc: UInt16 = 0x0200
    public static let rd: UInt16 = 0x0100
    public static let ra: UInt16 = 0x0080
    public static let ad: UInt16 = 0x0020
    public static let cd: UInt16 = 0x0010
    /// The opcode: 4 bits from bit 11.
    public static let opcodeShift: UInt16 = 11
    public static let opcodeMask: UInt16 = 0xF
    /// The rcode: the low 4 bits (the upper 8 of an extended rcode travel in the OPT record).
    public static let rcodeMask: UInt16 = 0x000F
}
