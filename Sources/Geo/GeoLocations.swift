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
        let (i, new) = compactIndex.insert(c, compacts)
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
            let (i, new) = compactIndex.insert(c, compacts)
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

/// Compact forms to indexes: open addressing with a multiplicative hash over the slots only (a
/// `Dictionary`'s SipHash was a tenth of the decode, and keys stored in the table a page fault
/// per slot); the keys are the caller's array, in index order.
struct CompactTable {
    /// Index + 1 of the key in each slot; 0 is empty.
    private var slots: [UInt32] = []
    private var count = 0

    /// The index of `key` in `keys`, or `keys.count` when it is new (the caller then appends it).
    mutating func insert(_ key: MMDBDecoder.Compact, _ keys: [MMDBDecoder.Compact]) -> (UInt32, inserted: Bool) {
        if (count + 1) * 2 > slots.count { grow(keys) }
        let mask = slots.count - 1
        var i = Self.hash(key) & mask
        while slots[i] != 0 {
            let index = slots[i] - 1
            if keys[Int(index)] == key { return (index, false) }
            i = (i + 1) & mask
        }
        slots[i] = UInt32(keys.count) + 1
        count += 1
        return (UInt32(keys.count), true)
    }

    private mutating func grow(_ keys: [MMDBDecoder.Compact]) {
        slots = [UInt32](repeating: 0, count: max(1024, slots.count * 2))
        let mask = slots.count - 1
        for (index, key) in keys.enumerated() {
            var i = Self.hash(key) & mask
            while slots[i] != 0 { i = (i + 1) & mask }
            slots[i] = UInt32(index) + 1
        }
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
