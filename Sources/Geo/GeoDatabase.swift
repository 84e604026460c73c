import CMaxMindDB
import Glibc

/// A MaxMind-format database (GeoLite2/GeoIP2 City or Country, ASN, DB-IP), opened with libmaxminddb.
///
/// This is the only module that sees libmaxminddb types. Opening validates the file, so a missing
/// or corrupt database is an error at load time, never at query time.
package final class GeoDatabase: @unchecked Sendable {
    package let path: String
    private var mmdb = MMDB_s()
    /// The database's IP version: 4 or 6 (an IPv6 database also holds IPv4 under ::/96).
    package let ipVersion: Int
    /// The database type from its metadata (`GeoLite2-City`, `GeoLite2-ASN`…).
    package let databaseType: String

    package init(path: String) throws {
        self.path = path
        let status = MMDB_open(path, UInt32(MMDB_MODE_MMAP), &mmdb)
        guard status == MMDB_SUCCESS else {
            throw GeoError(file: path, message: String(cString: MMDB_strerror(status)))
        }
        ipVersion = Int(mmdb.metadata.ip_version)
        databaseType = mmdb.metadata.database_type.map { String(cString: $0) } ?? "unknown"
    }

    deinit { MMDB_close(&mmdb) }

    /// Looks up an address given as 4 (IPv4) or 16 (IPv6) network-order octets; nil when the
    /// database has no entry for it.
    package func lookup(_ octets: [UInt8]) -> GeoRecord? {
        var storage = sockaddr_storage()
        let found: MMDB_lookup_result_s
        var error: Int32 = 0
        if octets.count == 4 {
            found = withUnsafeMutablePointer(to: &storage) { ptr in
                ptr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                    sin.pointee.sin_family = sa_family_t(AF_INET)
                    withUnsafeMutableBytes(of: &sin.pointee.sin_addr) { $0.copyBytes(from: octets) }
                    return sin.withMemoryRebound(to: sockaddr.self, capacity: 1) { MMDB_lookup_sockaddr(&mmdb, $0, &error) }
                }
            }
        } else if octets.count == 16 {
            found = withUnsafeMutablePointer(to: &storage) { ptr in
                ptr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin in
                    sin.pointee.sin6_family = sa_family_t(AF_INET6)
                    withUnsafeMutableBytes(of: &sin.pointee.sin6_addr) { $0.copyBytes(from: octets) }
                    return sin.withMemoryRebound(to: sockaddr.self, capacity: 1) { MMDB_lookup_sockaddr(&mmdb, $0, &error) }
                }
            }
        } else {
            return nil
        }
        guard error == MMDB_SUCCESS, found.found_entry else { return nil }
        var entry = found.entry
        var record = GeoRecord()
        // libmaxminddb counts the netmask in the IPv6 tree; an IPv4 address in an IPv6 database sits under ::/96.
        let netmask = Int(found.netmask)
        record.prefixLength = octets.count == 4 && ipVersion == 6 ? max(0, netmask - 96) : netmask
        record.continent = string(&entry, ["continent", "code"])
        record.country = string(&entry, ["country", "iso_code"]) ?? string(&entry, ["registered_country", "iso_code"])
        record.subdivision = string(&entry, ["subdivisions", "0", "iso_code"])
        record.latitude = double(&entry, ["location", "latitude"])
        record.longitude = double(&entry, ["location", "longitude"])
        record.asn = uint32(&entry, ["autonomous_system_number"])
        return record
    }

    private func value(_ entry: inout MMDB_entry_s, _ path: [String]) -> MMDB_entry_data_s? {
        var data = MMDB_entry_data_s()
        // MMDB_aget takes a NULL-terminated array of C strings.
        let cStrings = path.map { strdup($0) }
        defer { cStrings.forEach { free($0) } }
        var argv: [UnsafePointer<CChar>?] = cStrings.map { UnsafePointer($0) } + [nil]
        let status = argv.withUnsafeMutableBufferPointer { MMDB_aget_value(&entry, &data, $0.baseAddress) }
        guard status == MMDB_SUCCESS, data.has_data else { return nil }
        return data
    }

    private func string(_ entry: inout MMDB_entry_s, _ path: [String]) -> String? {
        guard let d = value(&entry, path), d.type == UInt32(MMDB_DATA_TYPE_UTF8_STRING) else { return nil }
        let bytes = UnsafeRawBufferPointer(start: d.utf8_string, count: Int(d.data_size))
        return String(decoding: bytes, as: UTF8.self)
    }

    private func double(_ entry: inout MMDB_entry_s, _ path: [String]) -> Double? {
        guard let d = value(&entry, path) else { return nil }
        if d.type == UInt32(MMDB_DATA_TYPE_DOUBLE) { return d.double_value }
        if d.type == UInt32(MMDB_DATA_TYPE_FLOAT) { return Double(d.float_value) }
        return nil
    }

    private func uint32(_ entry: inout MMDB_entry_s, _ path: [String]) -> UInt32? {
        guard let d = value(&entry, path), d.type == UInt32(MMDB_DATA_TYPE_UINT32) else { return nil }
        return d.uint32
    }
}
