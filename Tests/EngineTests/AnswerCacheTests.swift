import CLodestarSys
import Config
import DNSWire
import Engine
import Foundation
import Health
import OriginSupport
import Server
import Steering
import Testing

/// The UDP answer cache against the engine itself: whatever it sends must be what the engine
/// would have sent for that query, from that source, at that moment.
@Suite struct AnswerCacheTests {
    /// A zone with static names and four load-balanced ones over the sample database:
    /// `geo` (deterministic), `w` (weighted, random), `s` (weighted, sticky), `ramp` (slow start).
    static func makeSnapshot(database: String? = nil) throws -> Snapshot {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ls-cache-\(UUID().uuidString)")
        try FileManager.default.createDirectory(
            at: dir.appendingPathComponent("zones"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }  // the snapshot holds everything it read
        let zone = """
            $ORIGIN gslb.test.
            $TTL 300
            @ IN SOA ns1 hostmaster 1 3600 600 86400 60
            @ IN NS ns1
            ns1 IN A 192.0.2.53
            static IN A 192.0.2.99
            static IN AAAA 2001:db8::99
            alias IN CNAME geo
            big IN TXT "\(String(repeating: "x", count: 250))" "\(String(repeating: "y", count: 250))"
            big IN TXT "\(String(repeating: "z", count: 250))" "\(String(repeating: "w", count: 250))"

            """
        try zone.write(to: dir.appendingPathComponent("zones/gslb.test.zone"), atomically: true, encoding: .utf8)
        var repo = URL(fileURLWithPath: #filePath)
        repo.deleteLastPathComponent()
        repo.deleteLastPathComponent()
        repo.deleteLastPathComponent()
        let yaml = """
            server:
              zones: zones
            geo:
              database: \(database ?? repo.path + "/geo/sample.mmdb")
            regions:
              na: { coordinates: [39.04, -77.49] }
              eu: { coordinates: [50.11, 8.68] }
              ap: { coordinates: [35.68, 139.69] }
            pools:
              na: { region: na, slow-start: 2, endpoints: [ { name: na-1, address: 192.0.2.11 }, { name: na-2, address: 192.0.2.12 } ] }
              eu: { region: eu, endpoints: [ { name: eu-1, address: 198.51.100.11 }, { name: eu-2, address: 198.51.100.12 } ] }
              ap: { region: ap, endpoints: [ { name: ap-1, address: 203.0.113.11 } ] }
            names:
              geo.gslb.test:
                policy: [health, geo, failover]
                pools: [na, eu, ap]
                ttl: [10, 60]
                geo:
                  continent: { NA: [na], EU: [eu], AS: [ap], OC: [ap] }
              w.gslb.test:
                policy: [health, failover, weighted]
                pools: [eu]
                answers: 1
              s.gslb.test:
                policy: [health, failover, weighted]
                pools: [eu]
                answers: 1
                sticky: true

            """
        let path = dir.appendingPathComponent("lodestar.yaml").path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        let config = try Config.load(path)
        return try SnapshotLoader.load(config: config, previous: nil).snapshot
    }

    /// The snapshot and an empty cache in use for it.
    static func fixture() throws -> (Snapshot, AnswerCache) {
        let snapshot = try makeSnapshot()
        let cache = AnswerCache(slots: 256, metrics: snapshot.metrics)
        cache.use(snapshot)
        return (snapshot, cache)
    }

    static func query(
        _ name: String, _ type: UInt16 = RRType.a, id: UInt16 = 0x1234, edns: UInt16? = nil,
        ecs: [UInt8]? = nil
    ) -> [UInt8] {
        var q: [UInt8] = [
            UInt8(id >> 8), UInt8(id & 0xFF), 1, 0, 0, 1, 0, 0, 0, 0, 0, edns == nil && ecs == nil ? 0 : 1
        ]
        q += Name.fromText(name)! + [UInt8(type >> 8), UInt8(type & 0xFF), 0, 1]
        if edns != nil || ecs != nil {
            let payload = edns ?? 1232
            let option = ecs.map { [0, 8, 0, UInt8($0.count)] + $0 } ?? []
            q += [0, 0, 41, UInt8(payload >> 8), UInt8(payload & 0xFF), 0, 0, 0, 0, 0, UInt8(option.count)] + option
        }
        return q
    }

    /// ECS for an IPv4 /24 (family 1, source 24, scope 0).
    static func ecs(_ a: UInt8, _ b: UInt8, _ c: UInt8) -> [UInt8] { [0, 1, 24, 0, a, b, c] }

    static func source(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) -> ClientAddress {
        ClientAddress(bytes: [a, b, c, d])
    }

    /// The engine's response and the cache's, for the same packet, source and moment.
    static func both(_ cache: AnswerCache, _ snapshot: Snapshot, _ q: [UInt8], from client: ClientAddress)
        -> (engine: [UInt8], cached: [UInt8])
    {
        var a = [UInt8](repeating: 0, count: 4096)
        var b = a
        let now = lodestar_monotonic_ns()
        let n = q.withUnsafeBytes { p in
            b.withUnsafeMutableBytes {
                cache.respond(
                    engine: snapshot.engine, to: p, into: $0.baseAddress!, capacity: 4096, client: client, now: now)
            }
        }
        let m = q.withUnsafeBytes { p in
            a.withUnsafeMutableBytes {
                snapshot.engine.respond(to: p, into: $0.baseAddress!, capacity: 4096, transport: .udp, client: client)
            }
        }
        return (Array(a[0..<m]), Array(b[0..<n]))
    }

    @Test("Static and deterministic load-balanced answers are reused byte for byte, with the query's ID")
    func reuse() throws {
        let (snapshot, cache) = try Self.fixture()
        let here = Self.source(127, 0, 0, 1)
        let queries: [[UInt8]] = [
            Self.query("static.gslb.test."), Self.query("STATIC.gslb.TEST."),
            Self.query("static.gslb.test.", RRType.aaaa),
            Self.query("static.gslb.test.", edns: 4096), Self.query("nothere.gslb.test."),
            Self.query("gslb.test.", RRType.ns),
            Self.query("big.gslb.test.", RRType.txt), Self.query("big.gslb.test.", RRType.txt, edns: 1232),
            Self.query("alias.gslb.test.", ecs: Self.ecs(198, 51, 100)),
            Self.query("geo.gslb.test.", ecs: Self.ecs(192, 0, 2)),
            Self.query("geo.gslb.test.", ecs: Self.ecs(198, 51, 100)),
            Self.query("geo.gslb.test.", ecs: Self.ecs(203, 0, 113)),
            Self.query("geo.gslb.test.", RRType.txt), Self.query("other.test.")
        ]
        for q in queries {
            let first = Self.both(cache, snapshot, q, from: here)
            #expect(first.cached == first.engine)
            var again = q
            again[0] = 0x77
            again[1] = 0x88
            let second = Self.both(cache, snapshot, again, from: here)
            #expect(second.cached == second.engine)
            #expect(second.cached.prefix(2) == [0x77, 0x88])
        }
        // All but the 1,000-octet TXT answer (over the 864 octets a slot keeps) came from the cache.
        #expect(
            cache.hits == queries.count - 1 && cache.misses == queries.count + 1,
            "\(cache.hits) hits, \(cache.misses) misses")
        // Answers differ by continent, as they should.
        let na = Self.both(cache, snapshot, Self.query("geo.gslb.test.", ecs: Self.ecs(192, 0, 2)), from: here).cached
        let eu = Self.both(cache, snapshot, Self.query("geo.gslb.test.", ecs: Self.ecs(198, 51, 100)), from: here)
            .cached
        #expect(na != eu)
    }

    @Test("Without ECS, a located answer is reused only for sources in the same location network")
    func sourceNetworks() throws {
        let (snapshot, cache) = try Self.fixture()
        let q = Self.query("geo.gslb.test.")
        let sf = Self.both(cache, snapshot, q, from: Self.source(192, 0, 2, 10))  // 192.0.2.0/25, NA
        #expect(sf.cached == sf.engine && cache.misses == 1)
        let sf2 = Self.both(cache, snapshot, q, from: Self.source(192, 0, 2, 100))  // the same /25
        #expect(sf2.cached == sf2.engine && cache.hits == 1)
        let tokyo = Self.both(cache, snapshot, q, from: Self.source(203, 0, 113, 5))  // AS: another answer
        #expect(tokyo.cached == tokyo.engine && tokyo.cached != sf.cached)
        let berlin = Self.both(cache, snapshot, q, from: Self.source(198, 51, 100, 7))
        #expect(berlin.cached == berlin.engine && berlin.cached != sf.cached && berlin.cached != tokyo.cached)
        // The static name does not depend on the source: one entry for every source.
        _ = Self.both(cache, snapshot, Self.query("static.gslb.test."), from: Self.source(192, 0, 2, 1))
        let hits = cache.hits
        let other = Self.both(cache, snapshot, Self.query("static.gslb.test."), from: Self.source(203, 0, 113, 1))
        #expect(other.cached == other.engine && cache.hits == hits + 1)
    }

    @Test("Random picks are computed every time; sticky picks are reused per client subnet")
    func randomAndSticky() throws {
        let (snapshot, cache) = try Self.fixture()
        var seen = Set<[UInt8]>()
        for i in 0..<200 {
            let r = Self.both(
                cache, snapshot, Self.query("w.gslb.test.", id: UInt16(i)), from: Self.source(127, 0, 0, 1))
            seen.insert(Array(r.cached.dropFirst(2)))
        }
        #expect(seen.count == 2)  // eu-1 and eu-2 both appear: nothing was frozen by the cache
        #expect(cache.hits == 0)
        let q = Self.query("s.gslb.test.", ecs: Self.ecs(198, 51, 100))
        let first = Self.both(cache, snapshot, q, from: Self.source(127, 0, 0, 1))
        let second = Self.both(cache, snapshot, q, from: Self.source(127, 0, 0, 1))
        #expect(first.cached == first.engine && second.cached == second.engine && cache.hits == 1)
    }

    @Test("A health change empties the cache; a degraded answer is kept only until its TTL would rise")
    func healthAndSettling() throws {
        let snapshot = try Self.makeSnapshot()
        let store = SnapshotStore(snapshot)
        let cache = AnswerCache(slots: 256, metrics: snapshot.metrics)
        cache.use(snapshot)
        let naQuery = Self.query("geo.gslb.test.", ecs: Self.ecs(192, 0, 2))
        let euQuery = Self.query("geo.gslb.test.", ecs: Self.ecs(198, 51, 100))
        let here = Self.source(127, 0, 0, 1)
        let before = Self.both(cache, snapshot, naQuery, from: here).cached
        _ = Self.both(cache, snapshot, euQuery, from: here)

        var board = HealthBoard(topology: snapshot.steering!.table.model.health)
        board.setObserved(endpoint: "na-1", up: false, reason: "test", now: lodestar_monotonic())
        board.setObserved(endpoint: "na-2", up: false, reason: "test", now: lodestar_monotonic())
        store.replace(snapshot.with(health: board.view))
        let down = store.current
        cache.use(down)
        let failed = Self.both(cache, down, naQuery, from: here)
        #expect(failed.cached == failed.engine && failed.cached != before)  // na is down: not the old answer

        // na comes back with a 2 s slow start: EU clients keep eu at the low TTL until na settles.
        board.setObserved(endpoint: "na-1", up: true, reason: "test", now: lodestar_monotonic())
        board.setObserved(endpoint: "na-2", up: true, reason: "test", now: lodestar_monotonic())
        let ramping = down.with(health: board.view)
        cache.use(ramping)
        let low = Self.both(cache, ramping, euQuery, from: here)
        #expect(low.cached == low.engine)
        let again = Self.both(cache, ramping, euQuery, from: here)
        #expect(again.cached == again.engine && again.cached == low.cached)
        // NA clients during the ramp: a random part of them gets na, so nothing is reused.
        let misses = cache.misses
        _ = Self.both(cache, ramping, naQuery, from: here)
        _ = Self.both(cache, ramping, naQuery, from: here)
        #expect(cache.misses == misses + 2)
        let deadline = Date().addingTimeInterval(5)
        var settled = again
        while Date() < deadline {
            settled = Self.both(cache, ramping, euQuery, from: here)
            #expect(settled.cached == settled.engine)
            if settled.cached != low.cached { break }
            Thread.sleep(forTimeInterval: 0.1)
        }
        #expect(settled.cached != low.cached)  // the TTL went back up, and the cache followed
    }

    @Test("With ECS, every client subnet of one location network shares an entry, its own address echoed")
    func ecsNetworks() throws {
        let (snapshot, cache) = try Self.fixture()
        let here = Self.source(127, 0, 0, 1)
        // 192.0.2.0/25 is one network of the sample database (North America).
        let first = Self.both(cache, snapshot, Self.query("geo.gslb.test.", ecs: Self.ecs(192, 0, 2)), from: here)
        #expect(first.cached == first.engine && cache.misses == 1)
        // 198.51.100.0/24 is one network (Berlin): its two /25 clients share one entry, each
        // getting its own address echoed. 192.0.2.0/25 (San Francisco) and 192.0.2.128/25 (New
        // York) are both North America but order the other regions differently: two networks.
        let low = Self.both(
            cache, snapshot, Self.query("geo.gslb.test.", ecs: [0, 1, 25, 0, 198, 51, 100, 0]), from: here)
        var hitsBefore = cache.hits
        let high = Self.both(
            cache, snapshot, Self.query("geo.gslb.test.", id: 9, ecs: [0, 1, 25, 0, 198, 51, 100, 128]), from: here)
        #expect(low.cached == low.engine && high.cached == high.engine)
        #expect(cache.hits == hitsBefore + 1 && high.cached.suffix(4) == [198, 51, 100, 128])
        let west = Self.both(
            cache, snapshot, Self.query("geo.gslb.test.", ecs: [0, 1, 25, 0, 192, 0, 2, 0]), from: here)
        hitsBefore = cache.hits
        let east = Self.both(
            cache, snapshot, Self.query("geo.gslb.test.", ecs: [0, 1, 25, 0, 192, 0, 2, 128]), from: here)
        #expect(west.cached == west.engine && east.cached == east.engine && cache.hits == hitsBefore)
        let hits = cache.hits
        // Static names with ECS: one entry for every address, each echoed.
        for c: UInt8 in [1, 2, 3, 4] {
            let r = Self.both(cache, snapshot, Self.query("static.gslb.test.", ecs: Self.ecs(10, c, 0)), from: here)
            #expect(r.cached == r.engine)
        }
        #expect(cache.hits == hits + 3)
        // Located answers: addresses in other networks are not served the North American answer.
        for (a, b, c) in [(198, 51, 100), (203, 0, 113), (192, 0, 2), (10, 0, 0)] as [(UInt8, UInt8, UInt8)] {
            let r = Self.both(cache, snapshot, Self.query("geo.gslb.test.", ecs: Self.ecs(a, b, c)), from: here)
            #expect(r.cached == r.engine, "\(a).\(b).\(c).0/24")
        }
        // A malformed option (bits past the source prefix) is the parser's: FORMERR, never a cached answer.
        let bad = Self.both(cache, snapshot, Self.query("static.gslb.test.", ecs: [0, 1, 23, 0, 10, 1, 1]), from: here)
        #expect(bad.cached == bad.engine && bad.cached[3] & 0xF == 1)
        // IPv6 ECS: the same, with 16 octets at most.
        let v6 = Self.both(
            cache, snapshot,
            Self.query("geo.gslb.test.", RRType.aaaa, ecs: [0, 2, 48, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 2]), from: here)
        let v6again = Self.both(
            cache, snapshot,
            Self.query("geo.gslb.test.", RRType.aaaa, ecs: [0, 2, 48, 0, 0x20, 0x01, 0x0d, 0xb8, 0, 2]), from: here)
        #expect(v6.cached == v6.engine && v6again.cached == v6again.engine)
    }

    @Test("Every client of one location class shares an entry, with its own network's scope and address")
    func locationClasses() throws {
        let (snapshot, cache) = try Self.fixture()
        let here = Self.source(127, 0, 0, 1)
        // Addresses outside the sample database's networks are all of the class without a location,
        // in merged networks of different sizes: 10.0.0.0/8 and 100.64.0.0/10 are in different ones.
        var scopes = Set<UInt8>()
        var hitsBefore = cache.hits
        for (i, (a, b, c))
            in ([(10, 1, 2), (100, 64, 9), (172, 16, 5), (10, 200, 1), (100, 100, 100), (240, 1, 1)]
            as [(UInt8, UInt8, UInt8)]).enumerated()
        {
            let r = Self.both(
                cache, snapshot, Self.query("geo.gslb.test.", id: UInt16(i), ecs: Self.ecs(a, b, c)), from: here)
            #expect(r.cached == r.engine, "\(a).\(b).\(c).0/24")
            #expect(r.cached.suffix(3) == [a, b, c])
            scopes.insert(r.cached[r.cached.count - 4])
        }
        // One computed, five from its entry although their networks (and scopes) differ.
        #expect(cache.hits == hitsBefore + 5 && scopes.count > 1, "\(cache.hits - hitsBefore) hits, scopes \(scopes)")
        // Located classes stay apart: each continent is computed once, then shared by its clients.
        hitsBefore = cache.hits
        for (a, b, c) in [(198, 51, 100), (203, 0, 113), (192, 0, 2), (198, 51, 100), (203, 0, 113)]
            as [(UInt8, UInt8, UInt8)]
        {
            let r = Self.both(cache, snapshot, Self.query("geo.gslb.test.", id: 77, ecs: Self.ecs(a, b, c)), from: here)
            #expect(r.cached == r.engine, "\(a).\(b).\(c).0/24")
        }
        #expect(cache.hits == hitsBefore + 2)
        // Without ECS, by the class of the source address.
        hitsBefore = cache.hits
        for src in [
            Self.source(10, 9, 9, 9), Self.source(100, 65, 1, 1), Self.source(203, 0, 113, 5), Self.source(11, 0, 0, 1)
        ] {
            let r = Self.both(cache, snapshot, Self.query("geo.gslb.test."), from: src)
            #expect(r.cached == r.engine)
        }
        #expect(cache.hits == hitsBefore + 2)  // 100.65.1.1 and 11.0.0.1 share 10.9.9.9's class; Tokyo does not
        // An AAAA query for a name without IPv6 endpoints gets the zone's answer, whatever the class:
        // the class key is not used (the scope is 0), every client still gets the engine's response.
        for (i, prefix)
            in ([[0x20, 0x01, 0x0d, 0xb8, 0, 9], [0x2a, 0x00, 0x14, 0x50, 0, 1], [0x20, 0x01, 0x0d, 0xb8, 0, 2]]
            as [[UInt8]]).enumerated()
        {
            let r = Self.both(
                cache, snapshot, Self.query("geo.gslb.test.", RRType.aaaa, id: UInt16(i), ecs: [0, 2, 48, 0] + prefix),
                from: here)
            #expect(r.cached == r.engine)
        }
    }

    @Test("On GeoLite2-City, ECS from thousands of random /24s is served by a few class entries, byte for byte")
    func geoLite2Classes() throws {
        let path = try #require(GeoLite2.path, "maxminddb-geolite2 is not installed")
        let snapshot = try Self.makeSnapshot(database: path)
        let cache = AnswerCache(slots: 4096, metrics: snapshot.metrics)
        cache.use(snapshot)
        var rng: UInt64 = 42
        var differ = 0
        var scopes = Set<UInt8>()
        let n = 3000
        for i in 0..<n {
            rng = rng &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let a = UInt8(truncatingIfNeeded: rng >> 56)
            let b = UInt8(truncatingIfNeeded: rng >> 48)
            let c = UInt8(truncatingIfNeeded: rng >> 40)
            guard a != 0, a != 10, a != 127, a < 224 else { continue }
            let r = Self.both(
                cache, snapshot,
                Self.query("geo.gslb.test.", id: UInt16(truncatingIfNeeded: i), ecs: Self.ecs(a, b, c)),
                from: Self.source(127, 0, 0, 1))
            if r.cached != r.engine { differ += 1 }
            scopes.insert(r.cached[r.cached.count - 4])
        }
        let lookups = cache.hits + cache.misses
        #expect(differ == 0)
        // A handful of classes: nearly everything after the first query of each is a hit, though
        // the clients' networks (and so their scopes) vary.
        #expect(cache.hits * 100 >= lookups * 95, "\(cache.hits) hits in \(lookups)")
        #expect(scopes.count > 5 && !cache.sampling)
    }

    @Test("When queries hardly repeat the cache samples one in 16; once sampled queries hit again, it takes every one")
    func sampling() throws {
        let (snapshot, cache) = try Self.fixture()
        let here = Self.source(127, 0, 0, 1)
        // Random weighted picks are never kept: a window of 1,024 lookups without a hit.
        for i in 0..<AnswerCache.window {
            let r = Self.both(cache, snapshot, Self.query("w.gslb.test.", id: UInt16(i)), from: here)
            #expect(r.cached.count == r.engine.count && r.cached.count > 12)
        }
        #expect(cache.sampling && cache.misses == AnswerCache.window && cache.skipped == 0)
        // Sampling: 15 in 16 queries go straight to the engine; answers are still the engine's.
        for i in 0..<800 {
            let r = Self.both(cache, snapshot, Self.query("static.gslb.test.", id: UInt16(i)), from: here)
            #expect(r.cached == r.engine)
        }
        #expect(cache.skipped == 750 && cache.hits + cache.misses == AnswerCache.window + 50)
        // The sampled queries hit: after a window of them the cache takes every query again.
        for _ in 0..<(AnswerCache.window * AnswerCache.sampleEvery) {
            _ = Self.both(cache, snapshot, Self.query("static.gslb.test."), from: here)
        }
        #expect(!cache.sampling)
        let hits = cache.hits
        let skipped = cache.skipped
        for _ in 0..<10 { _ = Self.both(cache, snapshot, Self.query("static.gslb.test."), from: here) }
        #expect(cache.hits == hits + 10 && cache.skipped == skipped)
    }
}
