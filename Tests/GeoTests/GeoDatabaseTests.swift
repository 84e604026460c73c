import Foundation
import Geo
import OriginSupport
import Testing

/// libmaxminddb through `GeoDatabase`, on the real GeoLite2-City database from the PyPI package
/// `maxminddb-geolite2` (scripts/install-deps.sh --test installs it).
@Suite struct GeoDatabaseTests {
    static let geoLite2City: String? = {
        if let env = ProcessInfo.processInfo.environment["LODESTAR_GEOLITE2_CITY"] { return env }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [
            "python3", "-c", "import _maxminddb_geolite2, os; print(os.path.dirname(_maxminddb_geolite2.__file__))"
        ]
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

    @Test(
        "Clients on three continents are placed where they are",
        arguments: [
            ("8.8.8.8", "NA", "US"), ("2001:4860:4860::8888", "NA", "US"), ("194.25.2.129", "EU", "DE"),
            ("203.178.141.194", "AS", "JP"), ("1.1.1.1", "OC", "AU"), ("127.0.0.1", nil, nil)
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

    @Test("The search tree read in place agrees with libmaxminddb's reader on every node of GeoLite2-City")
    func treeAgrees() throws {
        let path = try #require(Self.geoLite2City, "GeoLite2-City.mmdb not found: pip install maxminddb-geolite2")
        let db = try GeoDatabase(path: path)
        #expect(
            db.nodeCount > 1_000_000 && db.recordCount > 100_000, "\(db.nodeCount) nodes, \(db.recordCount) records")
        var differ = 0
        for n in 0..<db.nodeCount {
            let (l, r) = db.tree.branches(n)
            let (rl, rr) = db.referenceBranches(n)
            if l != rl || r != rr { differ += 1 }
        }
        #expect(differ == 0, "\(differ) of \(db.nodeCount) nodes read differently")
    }

    @Test("Every record of GeoLite2-City decodes as libmaxminddb's path lookups read it")
    func decoderAgrees() throws {
        let path = try #require(Self.geoLite2City, "GeoLite2-City.mmdb not found: pip install maxminddb-geolite2")
        let db = try GeoDatabase(path: path)
        let locations = db.locations()
        let reference = db.referenceRecords()
        #expect(locations.ofRecord.count == reference.count && reference.count == db.recordCount)
        var differ = 0
        for (rank, r) in reference.enumerated() where locations.records[Int(locations.ofRecord[rank])] != r {
            differ += 1
        }
        #expect(differ == 0, "\(differ) of \(reference.count) records decoded differently")
        // Records told apart by what steering reads: far fewer locations than records.
        #expect(Set(reference).count == locations.records.count)
        #expect(locations.records.count < reference.count / 2)
    }

    @Test("An address found by walking the tree in place has libmaxminddb's record and network")
    func walkAgrees() throws {
        let path = try #require(Self.geoLite2City, "GeoLite2-City.mmdb not found: pip install maxminddb-geolite2")
        let db = try GeoDatabase(path: path)
        let locations = db.locations()
        var state: UInt64 = 0x5eed
        func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state
        }
        var located = 0
        for i in 0..<4000 {
            let r = next()
            // IPv6 addresses inside 2000::/4, where the allocated space is.
            let octets: [UInt8] =
                i % 2 == 0
                ? (0..<4).map { UInt8(truncatingIfNeeded: r >> (8 * UInt64($0))) }
                : [0x20 | UInt8(truncatingIfNeeded: r & 0x0F)]
                    + (1..<16).map { UInt8(truncatingIfNeeded: next() >> (8 * UInt64($0 % 8))) }
            var code: UInt32 = octets.count == 4 ? db.tree.ipv4Start : 0
            var depth = 0
            while code < db.nodeCount, depth < octets.count * 8 {
                let bit = octets[depth / 8] >> (7 - UInt8(depth % 8)) & 1
                code = bit == 0 ? db.tree.branches(code).0 : db.tree.branches(code).1
                depth += 1
            }
            let slow = db.lookup(octets)
            let found = code != GeoTree.empty && code & GeoTree.recordBit != 0
            #expect((slow == nil) == !found, "\(octets)")
            if let slow, found {
                var expected = locations.records[Int(locations.ofRecord[Int(code & ~GeoTree.recordBit)])]
                expected.prefixLength = depth
                #expect(expected == slow, "\(octets)")
                located += 1
            }
        }
        #expect(located > 1000)
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

/// The bundled sample database (geo/sample.mmdb, rebuilt by geo/build_sample.py from geo/sample.csv).
@Suite struct SampleDatabaseTests {
    static let path: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path + "/geo/sample.mmdb"
    }()

    @Test(
        "The sample places each documentation network, with the network's prefix length",
        arguments: [
            ("192.0.2.1", "NA", "US", "CA", 25), ("192.0.2.200", "NA", "US", "NY", 25),
            ("198.51.100.7", "EU", "DE", "BE", 24),
            ("203.0.113.9", "AS", "JP", "13", 25), ("203.0.113.200", "OC", "AU", "NSW", 25),
            ("2001:db8:2::1", "EU", "DE", "BE", 48), ("2001:db8:4:ffff::1", "SA", "BR", "SP", 48)
        ] as [(String, String, String, String, Int)])
    func places(address: String, continent: String, country: String, subdivision: String, prefix: Int) throws {
        let db = try GeoDatabase(path: Self.path)
        let r = try #require(db.lookup(GeoDatabaseTests.octets(address)))
        #expect(r.continent == continent && r.country == country && r.subdivision == subdivision, "\(r)")
        #expect(r.prefixLength == prefix)
        #expect(r.latitude != nil && r.longitude != nil)
    }

    @Test("geo/build_sample.py rebuilds the committed sample byte for byte")
    func reproducible() throws {
        let out = NSTemporaryDirectory() + "sample-\(UUID().uuidString).mmdb"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [
            "python3", URL(fileURLWithPath: Self.path).deletingLastPathComponent().path + "/build_sample.py", out
        ]
        p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "pip install mmdb-writer netaddr (scripts/install-deps.sh --test does)")
        let rebuilt = FileManager.default.contents(atPath: out)
        #expect(rebuilt != nil && rebuilt == FileManager.default.contents(atPath: Self.path))
    }

    @Test("Addresses outside the sample have no record")
    func outside() throws {
        let db = try GeoDatabase(path: Self.path)
        #expect(Set(db.locations().records.compactMap(\.country)) == ["US", "DE", "JP", "AU", "BR", "ZA"])
        #expect(db.lookup(GeoDatabaseTests.octets("8.8.8.8")) == nil)
        #expect(db.lookup(GeoDatabaseTests.octets("2001:db8:9::1")) == nil)
    }
}

/// Search trees that are not trees, made by patching a file mmdb-writer wrote: each passes the
/// data check, and a compile of any of them never ended (found by an outside tester).
@Suite struct HostileTreeTests {
    /// Writes an IPv`version` database with one network, patches its 24-bit records as `patch`
    /// says (node, side, value: a node number, or -1 for the data record), returns the path.
    static func patched(_ dir: String, _ name: String, version: Int, _ patch: String) throws -> String {
        let path = "\(dir)/\(name).mmdb"
        let script = """
            import maxminddb
            from mmdb_writer import MMDBWriter
            from netaddr import IPSet
            w = MMDBWriter(ip_version=\(version), database_type="GeoLite2-City", ipv4_compatible=\(version == 6 ? "True" : "False"))
            w.insert_network(IPSet(["8.0.0.0/8"] + (["2a00::/8"] if \(version) == 6 else [])), {"continent": {"code": "EU"}})
            w.to_db_file("\(path)")
            m = maxminddb.open_database("\(path)").metadata()
            assert m.record_size == 24
            b = bytearray(open("\(path)", "rb").read())
            n = m.node_count
            def get(node, side): return int.from_bytes(b[node * 6 + side * 3:node * 6 + side * 3 + 3], "big")
            data = max(get(i, s) for i in range(n) for s in (0, 1))
            def put(node, side, v): b[node * 6 + side * 3:node * 6 + side * 3 + 3] = (data if v < 0 else v).to_bytes(3, "big")
            \(patch)
            open("\(path)", "wb").write(b)
            """
        try #require(try Python.run(script) == 0, "mmdb-writer is not installed")
        return path
    }

    @Test(
        "A loop back to the root, a chain of shared nodes, a loop into the IPv4 subtree: refused at open, at once",
        .timeLimit(.minutes(1)))
    func notATree() throws {
        let dir = NSTemporaryDirectory() + "tree-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let cases: [(String, Int, String)] = [
            ("root-loop", 4, "put(0, 0, 0); put(0, 1, -1)"),
            ("chain", 4, "[(put(i, 0, i + 1), put(i, 1, i + 1)) for i in range(n - 1)]; put(n - 1, 0, -1)"),
            ("chain-v6", 6, "[(put(i, 0, i + 1), put(i, 1, i + 1)) for i in range(n - 1)]; put(n - 1, 0, -1)"),
            // The IPv4 subtree (96 zero bits down) may be shared, but not entered from inside itself.
            ("ipv4-loop", 6, "a = 0\nfor _ in range(96): a = get(a, 0)\nput(a, 1, a)")
        ]
        for (name, version, patch) in cases {
            let path = try Self.patched(dir, name, version: version, patch)
            let started = Date()
            do {
                _ = try GeoDatabase(path: path)
                Issue.record("\(name): opened")
            } catch let e as GeoError {
                #expect(e.message.contains("loop or a shared subtree"), "\(name): \(e.message)")
                #expect(e.description.hasPrefix(path))
            }
            #expect(Date().timeIntervalSince(started) < 2, "\(name)")
        }
        // The writer's own files open: IPv4, and IPv6 with IPv4's subtree shared three ways.
        _ = try GeoDatabase(path: try Self.patched(dir, "plain", version: 4, "pass"))
        let v6 = try GeoDatabase(path: try Self.patched(dir, "plain6", version: 6, "pass"))
        #expect(v6.lookup([8, 1, 2, 3])?.continent == "EU")
        _ = try GeoDatabase(path: SampleDatabaseTests.path)
    }
}

/// Values a database may hold that no place has.
@Suite struct ImpossibleValuesTests {
    @Test("Latitudes past 90°, longitudes past 180° and coordinates that are not finite are dropped")
    func coordinates() throws {
        let dir = NSTemporaryDirectory() + "coords-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/odd.mmdb"
        let script = """
            from mmdb_writer import MMDBWriter
            from netaddr import IPSet
            w = MMDBWriter(ip_version=4, database_type="GeoLite2-City")
            for net, la, lo in [("10.0.0.0/8", 1e308, 8.0), ("11.0.0.0/8", 91.0, 8.0), ("12.0.0.0/8", 50.0, -181.0),
                                ("13.0.0.0/8", float("nan"), 8.0), ("14.0.0.0/8", 50.0, 8.0)]:
                w.insert_network(IPSet([net]), {"continent": {"code": "EU"}, "location": {"latitude": la, "longitude": lo}})
            w.to_db_file("\(path)")
            """
        try #require(try Python.run(script) == 0, "mmdb-writer is not installed")
        let db = try GeoDatabase(path: path)
        for (first, kept) in [(10, false), (11, false), (12, false), (13, false), (14, true)] as [(UInt8, Bool)] {
            let r = try #require(db.lookup([first, 1, 2, 3]))
            #expect((r.latitude != nil && r.longitude != nil) == kept, "\(first).1.2.3: \(r)")
            if !kept { #expect(r.latitude == nil || r.longitude == nil) }
        }
        let decoded = db.locations().records
        #expect(decoded.filter { $0.latitude != nil && $0.longitude != nil }.count == 1, "\(decoded)")
        #expect(decoded.allSatisfy { ($0.latitude ?? 0).isFinite && abs($0.latitude ?? 0) <= 90 })
    }

    @Test("A file's identity changes when it is rewritten in place with its size and time put back")
    func identity() throws {
        let path = NSTemporaryDirectory() + "identity-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data("one version".utf8).write(to: URL(fileURLWithPath: path))
        let before = try #require(FileIdentity.of(path))
        usleep(20_000)
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try h.write(contentsOf: Data("two version".utf8))
        try h.close()
        var times = [
            timespec(tv_sec: Int(before.modifiedSeconds), tv_nsec: Int(before.modifiedNanoseconds)),
            timespec(tv_sec: Int(before.modifiedSeconds), tv_nsec: Int(before.modifiedNanoseconds))
        ]
        #expect(utimensat(AT_FDCWD, path, &times, 0) == 0)
        let after = try #require(FileIdentity.of(path))
        #expect(after.size == before.size && after.modified == before.modified && after.inode == before.inode)
        #expect(after != before, "the change time tells the versions apart")
    }
}
