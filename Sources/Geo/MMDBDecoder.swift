import Foundation

/// Reads the fields steering uses out of a record of a MaxMind database's data section, in one pass
/// over the record's map and without libmaxminddb's path lookups (a tenth of their time: the
/// compile decodes every record of the database). Every read is bounds-checked and a pointer is
/// followed once, so damaged octets give a missing field, never a trap; but it is meant for a
/// data section `MMDBVerifier` has accepted. (Sendable: it reads memory nothing writes.)
struct MMDBDecoder: @unchecked Sendable {
    let data: UnsafeRawBufferPointer

    private static let continent: StaticString = "continent"
    private static let country: StaticString = "country"
    private static let registeredCountry: StaticString = "registered_country"
    private static let subdivisions: StaticString = "subdivisions"
    private static let location: StaticString = "location"
    private static let asn: StaticString = "autonomous_system_number"
    private static let code: StaticString = "code"
    private static let isoCode: StaticString = "iso_code"
    private static let latitude: StaticString = "latitude"
    private static let longitude: StaticString = "longitude"

    /// What steering reads of a record, in plain integers (cheap to hash: records are told apart
    /// by it). A string of up to seven octets is packed with its length in the low octet; a longer
    /// one is `longString | offset` of the string in the data section; 0 is absent.
    struct Compact: Hashable {
        var continent: UInt64 = 0
        var country: UInt64 = 0
        var subdivision: UInt64 = 0
        var latitude: UInt64 = 0
        var longitude: UInt64 = 0
        /// The number in the low 32 bits, `present` above.
        var asn: UInt64 = 0
        /// Bit 0 latitude, bit 1 longitude present.
        var coordinates: UInt8 = 0

        static let longString: UInt64 = 1 << 63
        static let present: UInt64 = 1 << 32
    }

    /// What a decoder has read of values records share through pointers (a record's continent,
    /// country and subdivisions are usually pointers to one value per place): a direct-mapped
    /// cache from (field, target offset) to the packed string.
    struct Memo {
        private var keys = [Int](repeating: -1, count: 1 << 14)
        private var values = [UInt64](repeating: 0, count: 1 << 14)

        mutating func value(_ field: Int, _ target: Int, _ read: () -> UInt64) -> UInt64 {
            let key = target << 2 | field
            let slot = (key &* 0x9E37_79B9) >> 7 & (keys.count - 1)
            if keys[slot] == key { return values[slot] }
            let v = read()
            keys[slot] = key
            values[slot] = v
            return v
        }
    }

    /// The record at a data-section offset, in plain integers, through a memo of shared values.
    func compact(at offset: Int, memo: inout Memo) -> Compact {
        var c = Compact()
        guard let (type, size, payload) = header(offset), type == 7 else { return c }
        var registered: UInt64 = 0
        var next = payload
        for _ in 0..<size {
            guard let key = stringBytes(at: next), let value = skip(next) else { break }
            // A pointer's target is the same value wherever it is pointed to from.
            let shared =
                data[value] >> 5 == 1 ? MMDBFormat.pointer(data, value, control: Int(data[value]))?.target : nil
            func read(_ field: Int, _ body: () -> UInt64) -> UInt64 {
                guard let shared else { return body() }
                return memo.value(field, shared, body)
            }
            switch key.count {  // the keys read have distinct lengths
            case 9:
                if equal(key, Self.continent) {
                    c.continent = read(0) { packed(member(Self.code, ofMapAt: value)) }
                }
            case 7:
                if equal(key, Self.country) {
                    c.country = read(1) { packed(member(Self.isoCode, ofMapAt: value)) }
                }
            case 18:
                if equal(key, Self.registeredCountry) {
                    registered = read(1) { packed(member(Self.isoCode, ofMapAt: value)) }
                }
            case 12:
                if equal(key, Self.subdivisions) {
                    c.subdivision = read(2) {
                        packed(member(Self.isoCode, ofMapAt: firstElement(ofArrayAt: value)))
                    }
                }
            case 8:
                if equal(key, Self.location) {
                    if let v = double(at: member(Self.latitude, ofMapAt: value)) {
                        c.latitude = v.bitPattern
                        c.coordinates |= 1
                    }
                    if let v = double(at: member(Self.longitude, ofMapAt: value)) {
                        c.longitude = v.bitPattern
                        c.coordinates |= 2
                    }
                }
            case 24:
                if equal(key, Self.asn), let v = unsigned(at: value) { c.asn = Compact.present | UInt64(v) }
            default: break
            }
            guard let after = skip(value) else { break }
            next = after
        }
        if c.country == 0 { c.country = registered }
        return c
    }

    /// The record a compact form stands for (prefix length 0).
    func record(_ c: Compact) -> GeoRecord {
        var r = GeoRecord()
        r.continent = unpacked(c.continent)
        r.country = unpacked(c.country)
        r.subdivision = unpacked(c.subdivision)
        if c.coordinates & 1 != 0 { r.latitude = Double(bitPattern: c.latitude) }
        if c.coordinates & 2 != 0 { r.longitude = Double(bitPattern: c.longitude) }
        if c.asn & Compact.present != 0 { r.asn = UInt32(truncatingIfNeeded: c.asn) }
        r.dropImpossibleCoordinates()
        return r
    }

    private func packed(_ at: Int?) -> UInt64 {
        guard let at, let bytes = stringBytes(at: at) else { return 0 }
        guard bytes.count <= 7 else { return Compact.longString | UInt64(at) }
        var v = UInt64(bytes.count)
        for (i, b) in bytes.enumerated() { v |= UInt64(b) << (8 * (i + 1)) }
        return v
    }

    private func unpacked(_ v: UInt64) -> String? {
        if v == 0 { return nil }
        if v & Compact.longString != 0 { return string(at: Int(truncatingIfNeeded: v & ~Compact.longString)) }
        let n = Int(v & 0xFF)
        return String(decoding: (0..<n).map { UInt8(truncatingIfNeeded: v >> (8 * ($0 + 1))) }, as: UTF8.self)
    }

    // MARK: - The format (MaxMind DB spec, "Output data section")

    /// Type, size and payload offset of the value whose control byte is at `at`, a pointer
    /// followed (once): nil when out of bounds, a pointer to a pointer, or an unknown type.
    private func header(_ at: Int) -> (type: Int, size: Int, payload: Int)? {
        guard let h = MMDBFormat.header(data, at) else { return nil }
        guard h.type == 1 else { return h }
        guard let (target, _) = MMDBFormat.pointer(data, at, control: h.size),
            let t = MMDBFormat.header(data, target), t.type != 1
        else { return nil }
        return t
    }

    /// The offset just past the value at `at` (a pointer's own octets, not its target's), nil when
    /// damaged. Nesting is bounded as the verifier bounds it.
    private func skip(_ at: Int, depth: Int = 0) -> Int? {
        guard depth <= MMDBVerifier.maxDepth, let (type, size, payload) = MMDBFormat.header(data, at) else {
            return nil
        }
        switch type {
        case 1: return at + 2 + ((size >> 3) & 3)
        case 7:
            var next = payload
            for _ in 0..<size {
                guard let k = skip(next, depth: depth + 1), let v = skip(k, depth: depth + 1) else { return nil }
                next = v
            }
            return next
        case 11:
            var next = payload
            for _ in 0..<size {
                guard let v = skip(next, depth: depth + 1) else { return nil }
                next = v
            }
            return next
        case 14: return payload
        default:
            guard size <= data.count - payload else { return nil }
            return payload + size
        }
    }

    /// The value of `key` in the map at `at` (the first pair with that key).
    private func member(_ key: StaticString, ofMapAt at: Int?) -> Int? {
        guard let at, let (type, size, payload) = header(at), type == 7 else { return nil }
        var next = payload
        for _ in 0..<size {
            guard let k = stringBytes(at: next), let value = skip(next) else { return nil }
            if equal(k, key) { return value }
            guard let after = skip(value) else { return nil }
            next = after
        }
        return nil
    }

    private func firstElement(ofArrayAt at: Int?) -> Int? {
        guard let at, let (type, size, payload) = header(at), type == 11, size > 0 else { return nil }
        return payload
    }

    private func stringBytes(at: Int?) -> UnsafeRawBufferPointer? {
        guard let at, let (type, size, payload) = header(at), type == 2, size <= data.count - payload else {
            return nil
        }
        return UnsafeRawBufferPointer(rebasing: data[payload..<payload + size])
    }

    private func string(at: Int?) -> String? {
        stringBytes(at: at).map { String(decoding: $0, as: UTF8.self) }
    }

    private func double(at: Int?) -> Double? {
        guard let at, let (type, size, payload) = header(at) else { return nil }
        if type == 3, size == 8, let v = MMDBFormat.bigEndian(data, payload, 8) { return Double(bitPattern: v) }
        if type == 15, size == 4, let v = MMDBFormat.bigEndian(data, payload, 4) {
            return Double(Float(bitPattern: UInt32(v)))
        }
        return nil
    }

    /// An unsigned number of any width the format allows (writers pick the smallest that fits).
    private func unsigned(at: Int?) -> UInt32? {
        guard let at, let (type, size, payload) = header(at), let v = MMDBFormat.bigEndian(data, payload, size) else {
            return nil
        }
        switch type {
        case 5 where size <= 2, 6 where size <= 4: return UInt32(v)
        case 8 where size <= 4:  // int32: shorter than four octets is positive
            return size == 4 && v >= 1 << 31 ? nil : UInt32(v)
        case 9 where size <= 8: return v <= UInt64(UInt32.max) ? UInt32(v) : nil
        default: return nil
        }
    }

    private func equal(_ a: UnsafeRawBufferPointer, _ b: StaticString) -> Bool {
        a.count == b.utf8CodeUnitCount && memcmp(a.baseAddress!, b.utf8Start, a.count) == 0
    }
}
