import CMaxMindDB
public import Foundation

/// A MaxMind-format database (GeoLite2/GeoIP2 City or Country, ASN, DB-IP), opened with libmaxminddb.
///
/// This is the only module that sees libmaxminddb types. Opening validates the file and walks its
/// whole search tree once, decoding every distinct data record into `records`: a missing or corrupt
/// database is an error at load time, never at query time, and the query path (`locate`) only
/// walks the tree to an index into `records` — no decoding, no allocation.
public final class GeoDatabase: @unchecked Sendable {
    public let path: String
    /// libmaxminddb's handle at a stable address: entries it returns point back at it.
    private let db: UnsafeMutablePointer<MMDB_s>
    /// The database's IP version: 4 or 6 (an IPv6 database also holds IPv4 under ::/96).
    public let ipVersion: Int
    /// The database type from its metadata (`GeoLite2-City`, `GeoLite2-ASN`…).
    public let databaseType: String
    /// The file's modification time when opened: a reload reopens only a changed file.
    public let modified: Date?
    /// Every distinct data record, in the order of their offsets in the file (`prefixLength` 0).
    public private(set) var records: [GeoRecord] = []
    /// Data-section offset of each record in `records`, ascending: `locate` binary-searches it.
    private var offsets: [UInt32] = []

    /// Search-tree nodes visited at load beyond this are taken as a corrupt file (GeoLite2-City has ~4M).
    static let maxNodes: UInt32 = 64 << 20

    public init(path: String) throws {
        self.path = path
        modified = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
        db = .allocate(capacity: 1)
        db.initialize(to: MMDB_s())
        // libmaxminddb maps the file it opens: a file overwritten in place afterwards (`cp` over
        // it, `truncate`) changes under the mapping, and reading past its new end is SIGBUS (an
        // explain after a truncation killed the server). It maps a private copy instead: one read
        // of the file into memory of this process's own (memfd), which nothing else can change.
        let copy: Int32
        do {
            copy = try Self.privateCopy(path)
        } catch {
            db.deallocate()
            throw error
        }
        let status = MMDB_open("/proc/self/fd/\(copy)", UInt32(MMDB_MODE_MMAP), db)
        close(copy)
        guard status == MMDB_SUCCESS else {
            db.deallocate()
            throw GeoError(file: path, message: String(cString: MMDB_strerror(status)))
        }
        ipVersion = Int(db.pointee.metadata.ip_version)
        databaseType = db.pointee.metadata.database_type.map { String(cString: $0) } ?? "unknown"
        // Every stored property is set: a throw from here on runs deinit, which closes and frees
        // the handle (closing it here too freed it twice: a damaged file crashed the reload).
        try loadRecords()
    }

    deinit {
        MMDB_close(db)
        db.deallocate()
    }

    /// Databases larger than this are refused unread (GeoLite2-City is ~60 MB, GeoIP2-City ~130 MB).
    static let maxFileSize = 4 << 30

    /// The file's octets in an anonymous memory file (memfd), read once through one descriptor:
    /// its descriptor, for libmaxminddb to open through /proc/self/fd.
    static func privateCopy(_ path: String) throws -> Int32 {
        let source = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)  // a FIFO must not block the open
        guard source >= 0 else {
            throw GeoError(file: path, message: "cannot open: \(String(cString: strerror(errno)))")
        }
        defer { close(source) }
        var st = stat()
        guard fstat(source, &st) == 0, st.st_mode & S_IFMT == S_IFREG else {
            throw GeoError(file: path, message: "not a regular file")
        }
        guard st.st_size <= maxFileSize else {
            throw GeoError(file: path, message: "a file of \(st.st_size) octets (at most \(maxFileSize))")
        }
        let copy = lodestar_memfd("lodestar-geo")
        guard copy >= 0 else {
            throw GeoError(file: path, message: "cannot make a private copy: \(String(cString: strerror(errno)))")
        }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var total = 0
        while true {
            let n = read(source, &buffer, buffer.count)
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else {
                let e = errno
                close(copy)
                throw GeoError(file: path, message: "cannot read: \(String(cString: strerror(e)))")
            }
            if n == 0 { break }
            total += n
            // A file that grows while read (being written) past the limit is refused too.
            guard total <= maxFileSize else {
                close(copy)
                throw GeoError(file: path, message: "the file grew past \(maxFileSize) octets while read")
            }
            var off = 0
            while off < n {
                let w = buffer[off..<n].withUnsafeBytes { write(copy, $0.baseAddress, $0.count) }
                if w < 0 && errno == EINTR { continue }
                guard w > 0 else {
                    let e = errno
                    close(copy)
                    throw GeoError(file: path, message: "cannot copy into memory: \(String(cString: strerror(e)))")
                }
                off += w
            }
        }
        return copy
    }

    /// Walks the search tree once (shared IPv4 subtrees once) and decodes every data record.
    private func loadRecords() throws {
        let nodeCount = db.pointee.metadata.node_count
        guard nodeCount > 0, nodeCount < Self.maxNodes else {
            throw GeoError(file: path, message: "search tree of \(nodeCount) nodes")
        }
        var visited = [UInt64](repeating: 0, count: Int(nodeCount) / 64 + 1)
        var found = Set<UInt32>()
        var stack: [UInt32] = [0]
        while let n = stack.popLast() {
            let (word, bit) = (Int(n) / 64, UInt64(1) << UInt64(n % 64))
            if visited[word] & bit != 0 { continue }
            visited[word] |= bit
            var node = MMDB_search_node_s()
            guard MMDB_read_node(db, n, &node) == MMDB_SUCCESS else {
                throw GeoError(file: path, message: "corrupt search tree at node \(n)")
            }
            for (type, record, entry) in [
                (node.left_record_type, node.left_record, node.left_record_entry),
                (node.right_record_type, node.right_record, node.right_record_entry)
            ] {
                switch Int32(type) {
                case MMDB_RECORD_TYPE_SEARCH_NODE: stack.append(UInt32(record))
                case MMDB_RECORD_TYPE_DATA: found.insert(entry.offset)
                case MMDB_RECORD_TYPE_EMPTY: break
                default: throw GeoError(file: path, message: "corrupt search tree at node \(n)")
                }
            }
        }
        offsets = found.sorted()
        try verify()
        records = offsets.map { offset in
            var entry = MMDB_entry_s(mmdb: db, offset: offset)
            return decode(&entry, prefixLength: 0)
        }
    }

    /// The whole file checked before any record is used (`MMDBVerifier`): a damaged database is
    /// refused, never half used.
    private func verify() throws {
        let m = db.pointee
        guard let file = m.file_content, let dataStart = m.data_section, let meta = m.metadata_section, m.file_size > 0
        else {
            throw GeoError(file: path, message: "not mapped")
        }
        let treeSize = Int(m.metadata.node_count) * Int(m.full_record_byte_size)
        let dataOffset = dataStart - file
        let metaOffset = meta - file
        // The data section ends where the metadata marker begins.
        let dataEnd = metaOffset - MMDBVerifier.markerLength
        guard treeSize + 16 == dataOffset, dataOffset <= dataEnd, metaOffset <= m.file_size else {
            throw GeoError(
                file: path,
                message:
                    "the search tree (\(m.metadata.node_count) nodes of \(m.full_record_byte_size) octets) does not fit before the metadata: a truncated or damaged file"
            )
        }
        do {
            try MMDBVerifier.verify(
                separator: UnsafeRawBufferPointer(start: file + treeSize, count: 16),
                dataSection: UnsafeRawBufferPointer(start: dataStart, count: dataEnd - dataOffset),
                treeOffsets: offsets)
        } catch let e as MMDBVerifier.Failure {
            throw GeoError(file: path, message: "damaged database: \(e.description)")
        }
    }

    /// The index into `records` of the record for an address (4 or 16 network-order octets) and the
    /// prefix length of the database network holding it, or nil. Allocates nothing.
    public func locate(_ octets: UnsafeRawBufferPointer) -> (record: Int, prefixLength: Int)? {
        guard let found = lookupEntry(octets), let index = recordIndex(found.entry.offset) else { return nil }
        return (index, prefixLength(found, family: octets.count))
    }

    /// One branch of a search-tree node: another node, a data record (index into `records`), or nothing.
    public enum Branch: Sendable, Equatable {
        case node(UInt32)
        case record(Int)
        case empty
    }

    /// Number of search-tree nodes.
    public var nodeCount: UInt32 { db.pointee.metadata.node_count }

    /// The node where IPv4 addresses start: the root of an IPv4 database, the end of ::/96 in an IPv6
    /// one (nil when that path leaves the tree early).
    public var ipv4Root: Branch {
        guard ipVersion == 6 else { return .node(0) }
        var b = Branch.node(0)
        for _ in 0..<96 {
            guard case .node(let n) = b else { return b }
            b = branches(of: n).0
        }
        return b
    }

    /// The two branches (bit 0, bit 1) of a search-tree node. For load-time walks; the file was
    /// checked at open, so a read failure is reported as empty.
    public func branches(of node: UInt32) -> (Branch, Branch) {
        var n = MMDB_search_node_s()
        guard MMDB_read_node(db, node, &n) == MMDB_SUCCESS else { return (.empty, .empty) }
        return (
            branch(n.left_record_type, n.left_record, n.left_record_entry),
            branch(n.right_record_type, n.right_record, n.right_record_entry)
        )
    }

    private func branch(_ type: UInt8, _ record: UInt64, _ entry: MMDB_entry_s) -> Branch {
        switch Int32(type) {
        case MMDB_RECORD_TYPE_SEARCH_NODE: return .node(UInt32(record))
        case MMDB_RECORD_TYPE_DATA: return recordIndex(entry.offset).map { .record($0) } ?? .empty
        default: return .empty
        }
    }

    /// The index into `records` of the record at a data-section offset (binary search, no allocation).
    private func recordIndex(_ offset: UInt32) -> Int? {
        var lo = 0
        var hi = offsets.count - 1
        while lo <= hi {
            let mid = (lo + hi) >> 1
            let v = offsets[mid]
            if v == offset { return mid }
            if v < offset { lo = mid + 1 } else { hi = mid - 1 }
        }
        return nil
    }

    /// Looks up an address and decodes its record (allocates: for load-time and diagnostic use).
    public func lookup(_ octets: [UInt8]) -> GeoRecord? {
        octets.withUnsafeBytes { raw in
            guard var found = lookupEntry(raw) else { return nil }
            return decode(&found.entry, prefixLength: prefixLength(found, family: raw.count))
        }
    }

    /// libmaxminddb counts the netmask in the IPv6 tree; an IPv4 address in an IPv6 database sits under ::/96.
    private func prefixLength(_ found: MMDB_lookup_result_s, family: Int) -> Int {
        let netmask = Int(found.netmask)
        return family == 4 && ipVersion == 6 ? max(0, netmask - 96) : netmask
    }

    private func lookupEntry(_ octets: UnsafeRawBufferPointer) -> MMDB_lookup_result_s? {
        var storage = sockaddr_storage()
        var error: Int32 = 0
        let found: MMDB_lookup_result_s
        switch octets.count {
        case 4:
            found = withUnsafeMutablePointer(to: &storage) { ptr in
                ptr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                    sin.pointee.sin_family = sa_family_t(AF_INET)
                    withUnsafeMutableBytes(of: &sin.pointee.sin_addr) { $0.copyMemory(from: octets) }
                    return sin.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        MMDB_lookup_sockaddr(db, $0, &error)
                    }
                }
            }
        case 16:
            found = withUnsafeMutablePointer(to: &storage) { ptr in
                ptr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin in
                    sin.pointee.sin6_family = sa_family_t(AF_INET6)
                    withUnsafeMutableBytes(of: &sin.pointee.sin6_addr) { $0.copyMemory(from: octets) }
                    return sin.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        MMDB_lookup_sockaddr(db, $0, &error)
                    }
                }
            }
        default:
            return nil
        }
        guard error == MMDB_SUCCESS, found.found_entry else { return nil }
        return found
    }

    /// The record fields read, as the NULL-terminated C string arrays MMDB_aget_value takes;
    /// built once for the process (they are constants, never freed).
    private struct Path: @unchecked Sendable {
        let argv: UnsafeMutablePointer<UnsafePointer<CChar>?>
        init(_ components: String...) {
            argv = .allocate(capacity: components.count + 1)
            for (i, c) in components.enumerated() { argv[i] = UnsafePointer(strdup(c)) }
            argv[components.count] = nil
        }
    }

    private static let continent = Path("continent", "code")
    private static let country = Path("country", "iso_code")
    private static let registeredCountry = Path("registered_country", "iso_code")
    private static let subdivision = Path("subdivisions", "0", "iso_code")
    private static let latitude = Path("location", "latitude")
    private static let longitude = Path("location", "longitude")
    private static let asn = Path("autonomous_system_number")

    private func decode(_ entry: inout MMDB_entry_s, prefixLength: Int) -> GeoRecord {
        var record = GeoRecord()
        record.prefixLength = prefixLength
        record.continent = string(&entry, Self.continent)
        record.country = string(&entry, Self.country) ?? string(&entry, Self.registeredCountry)
        record.subdivision = string(&entry, Self.subdivision)
        record.latitude = double(&entry, Self.latitude)
        record.longitude = double(&entry, Self.longitude)
        record.asn = uint32(&entry, Self.asn)
        return record
    }

    private func value(_ entry: inout MMDB_entry_s, _ path: Path) -> MMDB_entry_data_s? {
        var data = MMDB_entry_data_s()
        let status = MMDB_aget_value(&entry, &data, path.argv)
        guard status == MMDB_SUCCESS, data.has_data else { return nil }
        return data
    }

    private func string(_ entry: inout MMDB_entry_s, _ path: Path) -> String? {
        guard let d = value(&entry, path), d.type == UInt32(MMDB_DATA_TYPE_UTF8_STRING) else { return nil }
        let bytes = UnsafeRawBufferPointer(start: d.utf8_string, count: Int(d.data_size))
        return String(decoding: bytes, as: UTF8.self)
    }

    private func double(_ entry: inout MMDB_entry_s, _ path: Path) -> Double? {
        guard let d = value(&entry, path) else { return nil }
        if d.type == UInt32(MMDB_DATA_TYPE_DOUBLE) { return d.double_value }
        if d.type == UInt32(MMDB_DATA_TYPE_FLOAT) { return Double(d.float_value) }
        return nil
    }

    /// An unsigned number of any width the format allows (writers pick the smallest that fits).
    private func uint32(_ entry: inout MMDB_entry_s, _ path: Path) -> UInt32? {
        guard let d = value(&entry, path) else { return nil }
        switch Int32(d.type) {
        case MMDB_DATA_TYPE_UINT16: return UInt32(d.uint16)
        case MMDB_DATA_TYPE_UINT32: return d.uint32
        case MMDB_DATA_TYPE_INT32: return d.int32 >= 0 ? UInt32(d.int32) : nil
        case MMDB_DATA_TYPE_UINT64: return d.uint64 <= UInt64(UInt32.max) ? UInt32(d.uint64) : nil
        default: return nil
        }
    }
}
