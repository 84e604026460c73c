import Foundation
import Geo
import Testing

/// libmaxminddb through `GeoDatabase`, on the real GeoLite2-City database from the PyPI package
/// `maxminddb-geolite2` (scripts/install-deps.sh --test installs it).
@Suite struct GeoDatabaseTests {
    static let geoLite2City: String? = {
        if let env = ProcessInfo.processInfo.environment["LODESTAR_GEOLITE2_CITY"] { return env }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", "import _maxminddb_geolite2, os; print(os.path.dirname(_maxminddb_geolite2.__file__))"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle(forWritingAtPath: "/dev/null")
        guard (try? p.run()) != nil else { return nil }
        p.waitUntilExit()
        let dir = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let path = dir + "/GeoLite2-City.mmdb"
        return FileManager.default.fileExists(atPath: path) ? path : nil
    }()

    static func octets(_ text: String) -> [UInt8] {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        _ = inet_pton(AF_INET6, text, &v6)
        return withUnsafeBytes(of: &v6) { Array($0) }
    }

    @Test("Clients on three continents are placed where they are", arguments: [
        ("8.8.8.8", "NA", "US"), ("2001:4860:4860::8888", "NA", "US"), ("194.25.2.129", "EU", "DE"),
        ("203.178.141.194", "AS", "JP"), ("1.1.1.1", "OC", "AU"), ("127.0.0.1", nil, nil),
    ] as [(String, String?, String?)])
    func continents(address: String, continent: String?, country: String?) throws {
        let path = try #require(Self.geoLite2City, "GeoLite2-City.mmdb not found: pip install maxminddb-geolite2")
        let db = try GeoDatabase(path: path)
        #expect(db.databaseType == "GeoLite2-City")
        let record = db.lookup(Self.octets(address))
        if let continent {
            let r = try #require(record)
            #expect(r.continent == continent && r.country == country, "\(address): \(r)")
            #expect(r.latitude != nil && r.longitude != nil)
            let max = address.contains(":") ? 128 : 32
            #expect(r.prefixLength > 0 && r.prefixLength <= max, "network of \(address): /\(r.prefixLength)")
        } else {
            #expect(record == nil, "\(address) is in no database network: \(String(describing: record))")
        }
    }

    @Test("A missing or corrupt database is an error naming the file")
    func badFiles() throws {
        #expect(throws: GeoError.self) { try GeoDatabase(path: "/nonexistent/GeoLite2-City.mmdb") }
        let path = NSTemporaryDirectory() + "corrupt-\(UUID().uuidString).mmdb"
        try Data("not a maxmind database".utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            _ = try GeoDatabase(path: path)
            Issue.record("a corrupt file opened")
        } catch let e as GeoError {
            #expect(e.description.hasPrefix(path + ": "))
        }
    }
}
