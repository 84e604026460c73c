import CMaxMindDB
public import Foundation

/// A MaxMind-format database (GeoLite2/GeoIP2 City or Country, ASN, DB-IP), opened with libmaxminddb.
///
/// This is the only module that sees libmaxminddb types. Opening validates the file whole (its
/// search tree walked once, its data section checked by `MMDBVerifier`): a missing or damaged
/// database is an error at load time. It is a load-time object: steering compiles every map
/// from it (`locations()`, `tree`) into tries of its own and lets it go, so the database is not
/// kept in memory while serving; `explain` opens it again to name a client's location.
public final class GeoDatabase: @unchecked Sendable {
    public let path: String
    /// libmaxminddb's handle at a stable address: entries it returns point back at it.
    private let db: UnsafeMutablePointer<MMDB_s>
    /// The database's IP version: 4 or 6 (an IPv6 database also holds IPv4 under ::/96).
    public let ipVersion: Int
    /// The database type from its metadata (`GeoLite2-City`, `GeoLite2-ASN`…).
    public let databaseType: String
    /// The version of the file that was read (from its open descriptor).
    public let identity: FileIdentity
    /// The data-section offsets of the records the search tree points to.
    let offsets: DataOffsets
    /// The search tree, read in place.
    public let tree: GeoTree
    /// Distinct data records the search tree points to.
    public var recordCount: Int { offsets.count }
    /// Number of search-tree nodes.
    public var nodeCount: UInt32 { tree.nodeCount }
    /// Seconds spent opening: copying the file and walking its tree, then checking its data.
    public private(set) var readSeconds: (walk: Double, check: Double) = (0, 0)

    /// Search-tree nodes beyond this are taken as a corrupt file (GeoLite2-City has ~4M).
    static let maxNodes: UInt32 = 64 << 20

    public init(path: String) throws {
        self.path = path
        db = .allocate(capacity: 1)
        db.initialize(to: MMDB_s())
        // libmaxminddb maps the file it opens: a file overwritten in place afterwards (`cp` over
        // it, `truncate`) changes under the mapping, and reading past its new end is SIGBUS (an
        // explain after a truncation killed the server). It maps a private copy instead: one read
        // of the file into memory of this process's own (memfd), which nothing else can change.
        let started = Date()
        let copy: (fd: Int32, identity: FileIdentity)
        do {
            copy = try Self.privateCopy(path)
        } catch {
            db.deallocate()
            throw error
        }
        let status = MMDB_open("/proc/self/fd/\(copy.fd)", UInt32(MMDB_MODE_MMAP), db)
        close(copy.fd)
        guard status == MMDB_SUCCESS else {
            db.deallocate()
            throw GeoError(file: path, message: String(cString: MMDB_strerror(status)))
        }
        identity = copy.identity
        let m = db.pointee
        ipVersion = Int(m.metadata.ip_version)
        databaseType = m.metadata.database_type.map { String(cString: $0) } ?? "unknown"
        // Every stored property is set from here on, so a throw runs deinit, which closes and
        // frees the handle (closing it here too freed it twice: a damaged file crashed the reload).
        let layout: (tree: GeoTree, dataSize: Int)
        do {
            layout = try Self.layout(m, path: path)
        } catch {
            MMDB_close(db)
            db.deallocate()
            throw error
        }
        do {
            var found = try Self.walk(
                layout.tree, ipVersion: Int(m.metadata.ip_version), dataSize: layout.dataSize, path: path)
            found.seal()
            guard found.count < Int(GeoTree.recordBit) else {
                throw GeoError(file: path, message: "\(found.count) records (at most \(GeoTree.recordBit - 1))")
            }
            offsets = found
        } catch {
            MMDB_close(db)
            db.deallocate()
            throw error
        }
        var tree = layout.tree
        tree.offsets = offsets
        self.tree = tree
        let walked = Date()
        try verify()
        readSeconds = (walked.timeIntervalSince(started), Date().timeIntervalSince(walked))
    }

    deinit {
        MMDB_close(db)
        db.deallocate()
    }

    /// The search tree's place and shape in the mapped file, checked against the file's size.
    private static func layout(_ m: MMDB_s, path: String) throws -> (tree: GeoTree, dataSize: Int) {
        let nodeCount = m.metadata.node_count
        guard nodeCount > 0, nodeCount < maxNodes else {
            throw GeoError(file: path, message: "search tree of \(nodeCount) nodes")
        }
        let recordBits = Int(m.metadata.record_size)
        guard [24, 28, 32].contains(recordBits), Int(m.full_record_byte_size) == recordBits / 4 else {
            throw GeoError(file: path, message: "records of \(recordBits) bits (24, 28 or 32)")
        }
        guard let file = m.file_content, let dataStart = m.data_section, let meta = m.metadata_section, m.file_size > 0
        else {
            throw GeoError(file: path, message: "not mapped")
        }
        let treeSize = Int(nodeCount) * Int(m.full_record_byte_size)
        let dataOffset = dataStart - file
        // The data section ends where the metadata marker begins.
        let dataEnd = (meta - file) - MMDBVerifier.markerLength
        guard treeSize + 16 == dataOffset, dataOffset <= dataEnd, meta - file <= m.file_size else {
            throw GeoError(
                file: path,
                message:
                    "the search tree (\(nodeCount) nodes of \(m.full_record_byte_size) octets) does not fit before the metadata: a truncated or damaged file"
            )
        }
        let tree = GeoTree(base: file, recordBits: recordBits, nodeCount: nodeCount)
        return (tree, dataEnd - dataOffset)
    }

    /// Walks the search tree once, marking the data offsets it points to. The tree must be a tree:
    /// every node reached once, but for the subtree of IPv4 in an IPv6 database, which ::/96,
    /// ::ffff:0:0/96 and 2002::/16 share (libmaxminddb's aliases). A node reached twice otherwise,
    /// a branch back to the root or into the IPv4 subtree from inside it, is damage: a tree with
    /// loops or shared nodes passes every other check, and a compile of it never ends (a file of
    /// 8 nodes made one grow without bound).
    private static func walk(_ tree: GeoTree, ipVersion: Int, dataSize: Int, path: String) throws -> DataOffsets {
        let nodeCount = tree.nodeCount
        var found = DataOffsets(size: dataSize)
        let visited = Bitmap(bits: Int(nodeCount))
        func seen(_ n: UInt32) -> Bool { visited.get(Int(n)) }
        func mark(_ n: UInt32) { visited.set(Int(n)) }
        // The IPv4 subtree: 96 zero bits down from the root (bounded: a loop of left branches ends there).
        let v4 = ipVersion == 6 ? tree.ipv4Start : nodeCount
        let alias: UInt32? = v4 < nodeCount ? v4 : nil
        func damaged(_ n: UInt32, _ child: UInt32) -> GeoError {
            GeoError(
                file: path,
                message:
                    "corrupt search tree: node \(n) leads to node \(child), which is reached another way (a loop or a shared subtree; only the IPv4 subtree may be shared)"
            )
        }
        // The IPv4 subtree first, then the rest, which may lead into it.
        for start in [alias, 0].compactMap({ $0 }) {
            let inAlias = start == alias && start != 0
            if seen(start) { throw damaged(0, start) }
            mark(start)
            var stack: [UInt32] = [start]
            while let n = stack.popLast() {
                let (left, right) = tree.raw(n)
                for value in [left, right] {
                    if value < nodeCount {
                        if seen(value) || value == 0 {
                            if value == alias && !inAlias && value != 0 { continue }
                            throw damaged(n, value)
                        }
                        mark(value)
                        stack.append(value)
                    } else if value > nodeCount {
                        // A pointer counts from the start of the 16-octet separator before the data.
                        let offset = Int(value - nodeCount) - 16
                        guard offset >= 0, offset < dataSize else {
                            throw GeoError(
                                file: path,
                                message:
                                    "corrupt search tree at node \(n): a record at offset \(offset) outside the data section (\(dataSize) octets)"
                            )
                        }
                        found.insert(offset)
                    }
                }
            }
        }
        return found
    }

    /// Databases larger than this are refused unread (GeoLite2-City is ~60 MB, GeoIP2-City ~130 MB).
    static let maxFileSize = 4 << 30

    /// The file's octets in an anonymous memory file (memfd), read once through one descriptor:
    /// its descriptor, for libmaxminddb to open through /proc/self/fd, and the file's identity.
    static func privateCopy(_ path: String) throws -> (fd: Int32, identity: FileIdentity) {
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
        return (copy, FileIdentity(st))
    }

    /// The whole file checked before any record is used (`MMDBVerifier`): a damaged database is
    /// refused, never half used.
    private func verify() throws {
        let m = db.pointee
        let treeSize = Int(m.metadata.node_count) * Int(m.full_record_byte_size)
        do {
            try MMDBVerifier.verify(
                separator: UnsafeRawBufferPointer(start: m.file_content! + treeSize, count: 16),
                dataSection: dataSection, treeOffsets: offsets)
        } catch let e as MMDBVerifier.Failure {
            throw GeoError(file: path, message: "damaged database: \(e.description)")
        }
    }

    private var dataSection: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: db.pointee.data_section!, count: offsets.size)
    }

    /// Every record the search tree points to, decoded once and told apart: what steering compiles.
    /// Decoded on both cores when there are many.
    public func locations() -> GeoLocations {
        let started = Date()
        let count = offsets.count
        let all = offsets.ascending
        let decoder = MMDBDecoder(data: dataSection)
        let parts = Parallel.parts(count, minimum: 50_000)
        let halves = Parallel.map(parts) { part in
            var l = GeoLocations(capacity: count / parts)
            var memo = MMDBDecoder.Memo()
            for i in (count * part / parts)..<(count * (part + 1) / parts) {
                l.append(decoder.compact(at: all[i], memo: &memo), decoder)
            }
            return l
        }
        var merged = halves[0]
        for h in halves.dropFirst() { merged.append(contentsOf: h) }
        merged.seal()
        merged.seconds = Date().timeIntervalSince(started)
        return merged
    }

    /// libmaxminddb's reading of node `n`'s branches, as codes: for tests of `tree` against it.
    package func referenceBranches(_ n: UInt32) -> (UInt32, UInt32) {
        var node = MMDB_search_node_s()
        guard MMDB_read_node(db, n, &node) == MMDB_SUCCESS else { return (GeoTree.empty, GeoTree.empty) }
        func code(_ type: UInt8, _ record: UInt64, _ entry: MMDB_entry_s) -> UInt32 {
            switch Int32(type) {
            case MMDB_RECORD_TYPE_SEARCH_NODE: return UInt32(record)
            case MMDB_RECORD_TYPE_DATA:
                return offsets.rank(Int(entry.offset)).map { GeoTree.recordBit | UInt32($0) } ?? GeoTree.empty
            default: return GeoTree.empty
            }
        }
        return (
            code(node.left_record_type, node.left_record, node.left_record_entry),
            code(node.right_record_type, node.right_record, node.right_record_entry)
        )
    }

    /// Every record decoded by libmaxminddb's path lookups, by rank: for tests of `locations()`.
    package func referenceRecords() -> [GeoRecord] {
        var out: [GeoRecord] = []
        for offset in offsets.ascending {
            var entry = MMDB_entry_s(mmdb: db, offset: UInt32(offset))
            out.append(decode(&entry, prefixLength: 0))
        }
        return out
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
        record.dropImpossibleCoordinates()
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
