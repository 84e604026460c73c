/// Records as parsed from zone text, packed into one byte arena to keep the peak load memory low.
///
/// One entry per RR; owner and RDATA are ranges of `bytes` in uncompressed wire form.
public struct RecordList: Sendable {
    public struct Entry: Sendable {
        public var ownerStart: UInt32
        public var ownerLength: UInt16
        public var type: UInt16
        public var rrClass: UInt16
        public var file: UInt16
        public var ttl: UInt32
        public var rdataStart: UInt32
        public var rdataLength: UInt16
        public var line: Int32
    }

    public var bytes: [UInt8] = []
    public var entries: [Entry] = []
    /// Names of the files entries came from (the zone file and its `$INCLUDE`s).
    public var files: [String] = []

    public init() {}

    public func owner(_ e: Entry) -> ArraySlice<UInt8> {
        bytes[Int(e.ownerStart)..<(Int(e.ownerStart) + Int(e.ownerLength))]
    }

    public func rdata(_ e: Entry) -> ArraySlice<UInt8> {
        bytes[Int(e.rdataStart)..<(Int(e.rdataStart) + Int(e.rdataLength))]
    }

    public mutating func fileIndex(_ path: String) -> UInt16 {
        if let i = files.firstIndex(of: path) { return UInt16(i) }
        files.append(path)
        return UInt16(files.count - 1)
    }

    public mutating func append(
        owner: UnsafeRawBufferPointer, type: UInt16, rrClass: UInt16, ttl: UInt32,
        rdata: UnsafeRawBufferPointer, file: UInt16, line: Int
    ) {
        let ownerStart = UInt32(bytes.count)
        bytes.append(contentsOf: owner)
        let rdataStart = UInt32(bytes.count)
        bytes.append(contentsOf: rdata)
        entries.append(
            Entry(
                ownerStart: ownerStart, ownerLength: UInt16(owner.count), type: type, rrClass: rrClass,
                file: file, ttl: ttl, rdataStart: rdataStart, rdataLength: UInt16(rdata.count),
                line: Int32(line)))
    }

    /// Lower-cases every owner name in place (RFC 4343): the builder keys names by their lower-case form.
    public mutating func lowercaseOwners() {
        bytes.withUnsafeMutableBufferPointer { b in
            for e in entries {
                let start = Int(e.ownerStart)
                for i in start..<(start + Int(e.ownerLength)) {
                    let c = b[i]
                    if c &- 65 < 26 { b[i] = c | 0x20 }
                }
            }
        }
    }

    /// Appends another list (used to merge the chunks parsed in parallel).
    public mutating func append(contentsOf other: RecordList) {
        let shift = UInt32(bytes.count)
        var map: [UInt16] = []
        for f in other.files { map.append(fileIndex(f)) }
        bytes.append(contentsOf: other.bytes)
        entries.reserveCapacity(entries.count + other.entries.count)
        for var e in other.entries {
            e.ownerStart += shift
            e.rdataStart += shift
            e.file = map.isEmpty ? e.file : map[Int(e.file)]
            entries.append(e)
        }
    }
}
