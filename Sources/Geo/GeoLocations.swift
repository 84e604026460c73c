/// The records of a database as steering compiles them: each distinct location once, and for
/// every record of the search tree (in file order, its rank) which one it is. GeoLite2-City's
/// 458,000 records hold about 150,000 distinct locations (records differ in fields steering does
/// not read: postal codes, names).
public struct GeoLocations: Sendable {
    /// Distinct records (prefix length 0).
    public private(set) var records: [GeoRecord] = []
    /// For each record of the database by rank, its index into `records`.
    public private(set) var ofRecord: [UInt32] = []
    /// Seconds spent decoding.
    public internal(set) var seconds: Double = 0
    /// While decoding: the compact form of each of `records`, and their index.
    private var compacts: [MMDBDecoder.Compact] = []
    private var compactIndex = CompactTable()

    init(capacity: Int = 0) {
        ofRecord.reserveCapacity(capacity)
    }

    /// Appends a record by its compact form, decoding it only when first seen.
    mutating func append(_ c: MMDBDecoder.Compact, _ decoder: MMDBDecoder) {
        let (i, new) = compactIndex.insert(c, UInt32(records.count))
        if new {
            records.append(decoder.record(c))
            compacts.append(c)
        }
        ofRecord.append(i)
    }

    /// Appends the records of another part, in its order.
    mutating func append(contentsOf other: GeoLocations) {
        var map = [UInt32](repeating: 0, count: other.records.count)
        for (j, c) in other.compacts.enumerated() {
            let (i, new) = compactIndex.insert(c, UInt32(records.count))
            if new {
                records.append(other.records[j])
                compacts.append(c)
            }
            map[j] = i
        }
        ofRecord.reserveCapacity(ofRecord.count + other.ofRecord.count)
        for j in other.ofRecord { ofRecord.append(map[Int(j)]) }
    }

    /// Drops what was kept for appending.
    mutating func seal() {
        compacts = []
        compactIndex = CompactTable()
    }
}

/// Compact forms to indexes: open addressing with a multiplicative hash (a `Dictionary`'s SipHash
/// was a tenth of the decode: half a million records are looked up).
struct CompactTable {
    private var keys: [MMDBDecoder.Compact] = []
    private var values: [UInt32] = []
    private var used: [Bool] = []
    private var count = 0

    /// The index stored for `key`, or `value` stored as new.
    mutating func insert(_ key: MMDBDecoder.Compact, _ value: UInt32) -> (UInt32, inserted: Bool) {
        if (count + 1) * 2 > used.count { grow() }
        let mask = used.count - 1
        var i = Self.hash(key) & mask
        while used[i] {
            if keys[i] == key { return (values[i], false) }
            i = (i + 1) & mask
        }
        used[i] = true
        keys[i] = key
        values[i] = value
        count += 1
        return (value, true)
    }

    private mutating func grow() {
        let old = (keys, values, used)
        let size = max(1024, used.count * 2)
        keys = [MMDBDecoder.Compact](repeating: MMDBDecoder.Compact(), count: size)
        values = [UInt32](repeating: 0, count: size)
        used = [Bool](repeating: false, count: size)
        count = 0
        for i in old.2.indices where old.2[i] { _ = insert(old.0[i], old.1[i]) }
    }

    private static func hash(_ k: MMDBDecoder.Compact) -> Int {
        @inline(__always) func mix(_ h: UInt64, _ v: UInt64) -> UInt64 {
            let m = (h ^ v) &* 0xBF58_476D_1CE4_E5B9
            return m ^ m >> 31
        }
        var h = k.continent &* 0x9E37_79B9_7F4A_7C15
        h = mix(h, k.country)
        h = mix(h, k.subdivision)
        h = mix(h, k.latitude)
        h = mix(h, k.longitude)
        h = mix(h, k.asn)
        h = mix(h, UInt64(k.coordinates))
        return Int(truncatingIfNeeded: h)
    }
}
