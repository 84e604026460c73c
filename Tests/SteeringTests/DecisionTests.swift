import Foundation
import Geo
import Health
import OriginSupport
import Testing

@testable import Steering

/// A model with three regions, a pool of two IPv4 endpoints in each, and one name.
func makeModel(
    chain: [PolicyStep], spread: Bool = false, capacities: [Double] = [1, 1, 1], slowStart: Double = 0,
    sticky: Bool = false, answers: Int = 1, allDown: AllDownMode = .failOpen
) -> SteeringModel {
    var m = SteeringModel()
    m.regions = [
        Region(name: "na", latitude: 39, longitude: -77), Region(name: "eu", latitude: 50, longitude: 8.7),
        Region(name: "ap", latitude: 35.7, longitude: 139.7)
    ]
    for (r, region) in m.regions.enumerated() {
        let first = m.endpoints.count
        for k in 0..<2 {
            m.endpoints.append(
                Endpoint(
                    name: "\(region.name)-\(k + 1)", target: .address([192, 0, 2, UInt8(10 * r + k)]),
                    capacity: capacities[r] / 2, pool: r))
        }
        m.pools.append(
            Pool(
                name: region.name, region: r, endpoints: [first, first + 1], capacity: capacities[r],
                slowStart: slowStart))
    }
    var n = SteeredName(
        name: "www.example.com.", wire: [3, 119, 119, 119, 7, 101, 120, 97, 109, 112, 108, 101, 3, 99, 111, 109, 0],
        types: [1, 28], ttlHigh: 60, ttlLow: 10, chain: chain, pools: [0, 1, 2])
    n.spread = spread
    n.answers = answers
    n.allDown = allDown
    if sticky { n.sticky = (24, 56) }
    if chain.contains(.geo) {
        var g = GeoRules()
        g.continent = ["NA": [0], "EU": [1], "AS": [2], "OC": [2]]
        g.nets = [
            (Prefix(family: 4, high: 0x0A00_0000 << 32, low: 0, length: 8), [1]),
            (Prefix(family: 4, high: 0x0A01_0000 << 32, low: 0, length: 16), [2])
        ]
        n.geo = g
    }
    m.names = [n]
    return m
}

/// Runs `count` decisions with seeds 1…count and counts answers per pool.
func poolShares(
    _ table: SteeringTable, health: HealthView, now: Double = 0, count: Int = 20_000,
    client: (Int, UInt64, UInt64) = (4, 0xC000_0201 << 32, 0)
) -> [Int] {
    var hits = [0, 0, 0]
    var trace = NoTrace()
    for i in 0..<count {
        let d = table.decide(
            name: 0, family: 4, clientFamily: client.0, high: client.1, low: client.2, health: health,
            now: now, random: mix(UInt64(i) &+ 12345), trace: &trace)
        if d.outcome == .answer { hits[d.pool] += 1 }
    }
    return hits
}

/// |observed − expected| within 5 standard deviations of a binomial: never flaky with fixed seeds,
/// and still a real check of the distribution.
func withinBound(_ observed: Int, count: Int, p: Double) -> Bool {
    let sd = (Double(count) * p * (1 - p)).squareRoot()
    return abs(Double(observed) - Double(count) * p) <= 5 * sd + 1
}

@Suite("Policy decisions")
struct DecisionTests {
    @Test("weighted: endpoint shares follow weights within a statistical bound")
    func weightedShares() {
        var m = makeModel(chain: [.health, .weighted])
        m.endpoints[0].weight = 3  // na-1 : na-2 = 3 : 1 inside pool na
        m.pools[0].weight = 2  // pools na : eu : ap = 2 : 1 : 1
        let table = SteeringTable(model: m, city: nil, asn: nil)
        let health = HealthView(topology: m.health)
        let n = 40_000
        var pools = [0, 0, 0]
        var naFirst = 0
        var trace = NoTrace()
        for i in 0..<n {
            let d = table.decide(
                name: 0, family: 4, clientFamily: 4, high: 0, low: 0, health: health, now: 0,
                random: mix(UInt64(i)), trace: &trace)
            pools[d.pool] += 1
            if d.pool == 0 && d.picks[0] == 0 { naFirst += 1 }
            #expect(d.scope == 0)  // the answer does not depend on the client
        }
        #expect(withinBound(pools[0], count: n, p: 0.5), "\(pools)")
        #expect(withinBound(pools[1], count: n, p: 0.25), "\(pools)")
        #expect(withinBound(naFirst, count: pools[0], p: 0.75), "\(naFirst) of \(pools[0])")
    }

    @Test("weighted multi-value: N distinct endpoints")
    func multiValue() {
        let m = makeModel(chain: [.weighted], answers: 2)
        let table = SteeringTable(model: m, city: nil, asn: nil)
        var trace = NoTrace()
        for i in 0..<200 {
            let d = table.decide(
                name: 0, family: 4, clientFamily: 0, high: 0, low: 0, health: HealthView(topology: m.health), now: 0,
                random: mix(UInt64(i)), trace: &trace)
            #expect(d.count == 2 && d.picks[0] != d.picks[1])
        }
    }

    @Test("failover: the first pool that is up wins; a pool below its threshold is skipped")
    func orderedFailover() {
        let m = makeModel(chain: [.health, .failover])
        let table = SteeringTable(model: m, city: nil, asn: nil)
        var board = HealthBoard(topology: m.health)
        #expect(poolShares(table, health: board.view, count: 100) == [100, 0, 0])
        board.setObserved(endpoint: "na-1", up: false, reason: "timeout", now: 0)
        // 1 of 2 up meets the default threshold of 0.5.
        #expect(poolShares(table, health: board.view, count: 100) == [100, 0, 0])
        board.setObserved(endpoint: "na-2", up: false, reason: "timeout", now: 0)
        #expect(poolShares(table, health: board.view, count: 100) == [0, 100, 0])
    }

    @Test("spread: a failed pool's share goes to the others in proportion to capacity")
    func spread() {
        let m = makeModel(chain: [.health, .failover], spread: true, capacities: [1, 1, 3])
        let table = SteeringTable(model: m, city: nil, asn: nil)
        var board = HealthBoard(topology: m.health)
        var o = AdminOverrides()
        o.pools["na"] = AdminOverride(state: .down)
        board.setOverrides(o, now: 0)
        let n = 20_000
        let hits = poolShares(table, health: board.view, count: n)
        #expect(hits[0] == 0)
        #expect(withinBound(hits[1], count: n, p: 0.25), "\(hits)")
        #expect(withinBound(hits[2], count: n, p: 0.75), "\(hits)")
    }

    @Test("slow start: a recovered pool's share ramps linearly over the window")
    func slowStart() {
        let m = makeModel(chain: [.health, .failover], spread: true, slowStart: 100)
        let table = SteeringTable(model: m, city: nil, asn: nil)
        var board = HealthBoard(topology: m.health)
        var o = AdminOverrides()
        o.pools["na"] = AdminOverride(state: .down)
        board.setOverrides(o, now: 1000)
        board.setOverrides(AdminOverrides(), now: 2000)  // back up at t = 2000
        let n = 20_000
        for (t, p) in [(2000.0, 0.0), (2025.0, 0.25), (2050.0, 0.5), (2075.0, 0.75), (2100.0, 1.0)] {
            let hits = poolShares(table, health: board.view, now: t, count: n)
            #expect(withinBound(hits[0], count: n, p: p), "at \(t): \(hits)")
        }
    }

    @Test("sticky: a client keeps its answer; a weight change moves only the share it must")
    func sticky() {
        var m = makeModel(chain: [.weighted], sticky: true)
        let table = SteeringTable(model: m, city: nil, asn: nil)
        var trace = NoTrace()
        func answer(_ t: SteeringTable, _ h: HealthView, client: UInt32, seed: UInt64) -> Decision {
            t.decide(
                name: 0, family: 4, clientFamily: 4, high: UInt64(client) << 40, low: 0, health: h, now: 0,
                random: seed, trace: &trace)
        }
        let h = HealthView(topology: m.health)
        var before: [Int32] = []
        for c in 0..<2000 {
            let a = answer(table, h, client: UInt32(c), seed: 1)
            let b = answer(table, h, client: UInt32(c), seed: 99)
            #expect(a.picks[0] == b.picks[0])  // the query's randomness does not matter
            #expect(a.scope == 24)
            before.append(a.picks[0])
        }
        // Pool eu's weight 1 → 2: its share goes from 1/3 to 1/2; only clients moving to eu change.
        m.pools[1].weight = 2
        let t2 = SteeringTable(model: m, city: nil, asn: nil)
        let h2 = HealthView(topology: m.health)
        var moved = 0
        var wrong = 0
        for c in 0..<2000 {
            let a = answer(t2, h2, client: UInt32(c), seed: 1)
            if a.picks[0] != before[c] {
                moved += 1
                if a.pool != 1 { wrong += 1 }
            }
        }
        #expect(wrong == 0)
        #expect(withinBound(moved, count: 2000, p: 0.5 - 1.0 / 3.0), "moved \(moved)")
    }

    @Test("all down: fail open, the zone's RRset, or SERVFAIL; TTL low while degraded")
    func allDown() {
        for (mode, outcome) in [
            (AllDownMode.failOpen, Decision.Outcome.failOpen), (.lastResort, .zone), (.servfail, .servfail)
        ] {
            let m = makeModel(chain: [.health, .failover], allDown: mode)
            let table = SteeringTable(model: m, city: nil, asn: nil)
            var board = HealthBoard(topology: m.health)
            var trace = NoTrace()
            let healthy = table.decide(
                name: 0, family: 4, clientFamily: 0, high: 0, low: 0, health: board.view, now: 0,
                random: 1, trace: &trace)
            #expect(healthy.ttl == 60)
            var o = AdminOverrides()
            o.pools["eu"] = AdminOverride(state: .drain)
            board.setOverrides(o, now: 0)
            let degraded = table.decide(
                name: 0, family: 4, clientFamily: 0, high: 0, low: 0, health: board.view, now: 0,
                random: 1, trace: &trace)
            #expect(degraded.outcome == .answer && degraded.ttl == 10)
            o.regions["na"] = AdminOverride(state: .down)
            o.regions["ap"] = AdminOverride(state: .down)
            board.setOverrides(o, now: 0)
            let d = table.decide(
                name: 0, family: 4, clientFamily: 0, high: 0, low: 0, health: board.view, now: 0,
                random: 1, trace: &trace)
            #expect(d.outcome == outcome)
        }
    }

    @Test("an AAAA query skips pools without IPv6 endpoints")
    func family() {
        let m = makeModel(chain: [.failover])
        let table = SteeringTable(model: m, city: nil, asn: nil)
        var trace = NoTrace()
        let d = table.decide(
            name: 0, family: 6, clientFamily: 0, high: 0, low: 0, health: HealthView(topology: m.health), now: 0,
            random: 1, trace: &trace)
        #expect(d.outcome == .zone)
    }
}

@Suite("Latency and geoproximity")
struct LatencyTests {
    func latencyModel(_ row: [Int: Double], hysteresis: Double = 10) -> SteeringModel {
        var m = makeModel(chain: [.health, .latency, .failover])
        var lat = LatencyMap()
        lat.nets = [(Prefix(family: 4, high: 0x0A00_0000 << 32, low: 0, length: 8), row)]
        lat.defaultRTT = [0: 10, 1: 50, 2: 200]
        lat.hysteresis = hysteresis
        m.names[0].latency = lat
        return m
    }

    func first(_ m: SteeringModel, client: UInt64) -> (pool: String, scope: Int) {
        let table = SteeringTable(model: m, city: nil, asn: nil)
        var trace = NoTrace()
        let d = table.decide(
            name: 0, family: 4, clientFamily: 4, high: client, low: 0, health: HealthView(topology: m.health),
            now: 0, random: 1, trace: &trace)
        return (m.pools[d.pool].name, d.scope)
    }

    @Test("latency: lowest expected RTT wins; within the hysteresis the earlier order stands")
    func latency() {
        let inTen: UInt64 = 0x0A01_0203 << 32
        let elsewhere: UInt64 = 0xC000_0201 << 32
        // 10/8: eu 20 ms, ap 25 ms (within 10 of the best: configured order, eu first), na 100 ms.
        #expect(first(latencyModel([0: 100, 1: 20, 2: 25]), client: inTen) == ("eu", 8))
        // ap 5 ms is more than 10 ms better than eu: ap.
        #expect(first(latencyModel([0: 100, 1: 20, 2: 5]), client: inTen).pool == "ap")
        // ap 12 ms against eu 20 ms: inside the hysteresis, so eu keeps its place.
        #expect(first(latencyModel([0: 100, 1: 20, 2: 12]), client: inTen).pool == "eu")
        #expect(first(latencyModel([0: 100, 1: 20, 2: 12], hysteresis: 5), client: inTen).pool == "ap")
        // Outside the CIDR map: the default row (na 10 ms).
        #expect(first(latencyModel([0: 100, 1: 20, 2: 25]), client: elsewhere).pool == "na")
    }

    @Test("live RTT: a region whose checks are slower than their recent best loses its place")
    func liveExcess() {
        let m = latencyModel([0: 100, 1: 20, 2: 25])
        let table = SteeringTable(model: m, city: nil, asn: nil)
        var board = HealthBoard(topology: m.health)
        func pool() -> String {
            var trace = NoTrace()
            let d = table.decide(
                name: 0, family: 4, clientFamily: 4, high: 0x0A01_0203 << 32, low: 0,
                health: board.view, now: 0, random: 1, trace: &trace)
            return m.pools[d.pool].name
        }
        #expect(pool() == "eu")
        // eu's origins answer 8 ms slower than their best: 28 against ap's 25 is within the hysteresis.
        board.setLiveRTT([m.regions[1].name: 8], now: 0)
        #expect(pool() == "eu")
        // 40 ms slower: eu 60 ms, ap 25 ms.
        board.setLiveRTT([m.regions[1].name: 40], now: 0)
        #expect(pool() == "ap")
        var trace = TextTrace()
        _ = table.decide(
            name: 0, family: 4, clientFamily: 4, high: 0x0A01_0203 << 32, low: 0, health: board.view,
            now: 0, random: 1, trace: &trace)
        #expect(trace.lines.contains { $0.contains("eu 60.0 ms (40.0 ms of it live excess)") }, "\(trace.lines)")
        board.setLiveRTT([:], now: 0)
        #expect(pool() == "eu")
    }

    @Test("geoproximity: nearest region by great-circle distance, moved by a region's bias")
    func bias() {
        var m = makeModel(chain: [.geo, .failover])
        m.names[0].geo = GeoRules()  // no rules: distance only
        let paris = GeoRecord(continent: "EU", country: "FR", latitude: 48.85, longitude: 2.35)
        #expect(Classifier(model: m, name: m.names[0]).classify(LocationFacts(record: paris)).0.order == [1, 0, 2])
        // Frankfurt is ~480 km from Paris, Ashburn ~6,200 km: a bias of 95 makes Ashburn count as ~310 km.
        m.regions[0].bias = 95
        #expect(Classifier(model: m, name: m.names[0]).classify(LocationFacts(record: paris)).0.order == [0, 1, 2])
        // A negative bias pushes a region away: Frankfurt at −99 counts as 480 / 0.01 ≈ 48,000 km, behind
        // Ashburn (~6,200 km) and Tokyo (~9,700 km).
        m.regions[0].bias = 0
        m.regions[1].bias = -99
        #expect(Classifier(model: m, name: m.names[0]).classify(LocationFacts(record: paris)).0.order == [0, 2, 1])
        #expect(abs(greatCircleKm(48.85, 2.35, 50.11, 8.68) - 480) < 20)
    }
}

@Suite("Location tries and ECS scope")
struct LocationTests {
    static let sample =
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path + "/geo/sample.mmdb"

    func v4(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) -> UInt64 {
        (UInt64(a) << 24 | UInt64(b) << 16 | UInt64(c) << 8 | UInt64(d)) << 32
    }

    @Test("the sample database: continent rules, nearest regions, merged networks, CIDR maps")
    func sampleTrie() throws {
        let db = try GeoDatabase(path: Self.sample)
        let m = makeModel(chain: [.health, .geo, .failover])
        let table = SteeringTable(model: m, city: db, asn: nil)
        let c = table.names[0]
        func at(_ high: UInt64, family: Int = 4, low: UInt64 = 0) -> (order: [String], depth: Int) {
            let (cls, depth) = family == 4 ? c.v4.locate(high: high, low: low) : c.v6.locate(high: high, low: low)
            return (c.classes[cls].order.map { m.pools[$0].name }, depth)
        }
        // 198.51.100.0/24 is Berlin: EU first, then by distance: Ashburn before Tokyo.
        #expect(at(v4(198, 51, 100, 7)) == (["eu", "na", "ap"], 24))
        // 203.0.113.0/25 Tokyo and /25 Sydney: both map to ap, but their nearest-next differ.
        #expect(at(v4(203, 0, 113, 1)).order == ["ap", "eu", "na"])  // Tokyo: Frankfurt is nearer than Ashburn
        #expect(at(v4(203, 0, 113, 1)).depth == 25)
        // San Francisco (192.0.2.0/25) and New York (/25): na first; the next region differs by distance.
        #expect(at(v4(192, 0, 2, 1)) == (["na", "ap", "eu"], 25))
        #expect(at(v4(192, 0, 2, 200)) == (["na", "eu", "ap"], 25))
        // CIDR map: 10.0.0.0/8 → eu, the longer 10.1.0.0/16 → ap (longest prefix wins).
        #expect(at(v4(10, 2, 3, 4)).order.first == "eu")
        #expect(at(v4(10, 2, 3, 4)).depth == 15)  // 10.2.0.0/15: the largest network without 10.1/16 in it
        #expect(at(v4(10, 1, 3, 4)) == (["ap", "na", "eu"], 16))  // no coordinates: the rest in configured order
        // IPv6: 2001:db8:3::/48 is Tokyo.
        #expect(at(0x2001_0DB8_0003_0000, family: 6).order.first == "ap")
        #expect(at(0x2001_0DB8_0003_0000, family: 6).depth == 48)
        // Nowhere in the database: the configured order, one network as large as the gaps allow.
        #expect(at(v4(100, 64, 0, 1)).order == ["na", "eu", "ap"])
    }

    @Test("names configured alike share one compiled trie; a different rule set gets its own")
    func sharedTries() throws {
        let db = try GeoDatabase(path: Self.sample)
        var m = makeModel(chain: [.health, .geo, .failover])
        var twin = m.names[0]
        twin.name = "api.example.com."
        twin.wire = [3, 97, 112, 105, 7, 101, 120, 97, 109, 112, 108, 101, 3, 99, 111, 109, 0]
        var other = twin
        other.name = "img.example.com."
        other.wire = [3, 105, 109, 103, 7, 101, 120, 97, 109, 112, 108, 101, 3, 99, 111, 109, 0]
        other.geo!.continent["EU"] = [2]
        m.names += [twin, other]
        let table = SteeringTable(model: m, city: db, asn: nil)
        #expect(table.names[1].classes == table.names[0].classes)
        #expect(table.names[1].v4.nodeCount == table.names[0].v4.nodeCount)
        let berlin: UInt64 = (198 << 24 | 51 << 16 | 100 << 8 | 7) << 32
        #expect(table.names[0].classes[table.names[0].v4.locate(high: berlin, low: 0).cls].order.first == 1)
        #expect(table.names[2].classes[table.names[2].v4.locate(high: berlin, low: 0).cls].order.first == 2)
        #expect(m.names[1].wire.withUnsafeBytes { table.find($0) } == 1)
    }

    @Test("an ASN database: an ASN rule beats the City database's continent, and the scope merges both trees")
    func asnRules() throws {
        // A GeoLite2-ASN-format database written by mmdb-writer: AS64500 holds 198.51.100.0/25 only.
        let dir = NSTemporaryDirectory() + "asn-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let script = """
            from mmdb_writer import MMDBWriter
            from netaddr import IPSet
            w = MMDBWriter(ip_version=6, database_type="GeoLite2-ASN", ipv4_compatible=True)
            w.insert_network(IPSet(["198.51.100.0/25"]), {"autonomous_system_number": 64500,
                             "autonomous_system_organization": "Example"})
            w.to_db_file("\(dir)/asn.mmdb")
            """
        try #require(try Python.run(script) == 0, "mmdb-writer is not installed")
        let asn = try GeoDatabase(path: dir + "/asn.mmdb")
        let city = try GeoDatabase(path: Self.sample)
        var m = makeModel(chain: [.health, .geo, .failover])
        m.names[0].geo!.asn[64500] = [2]
        let table = SteeringTable(model: m, city: city, asn: asn)
        let c = table.names[0]
        func at(_ last: UInt64) -> (String?, Int) {
            let (cls, depth) = c.v4.locate(high: (198 << 24 | 51 << 16 | 100 << 8 | last) << 32, low: 0)
            return (c.classes[cls].order.first.map { m.pools[$0].name }, depth)
        }
        // 198.51.100.0/25 is AS64500 → ap; the other /25 of the same City network stays EU → eu.
        #expect(at(7) == ("ap", 25))
        #expect(at(200) == ("eu", 25))
    }

    @Test("the trie agrees with rule-by-rule classification on random GeoLite2 addresses")
    func geoLite2Agreement() throws {
        let path = try #require(GeoLite2.path, "maxminddb-geolite2 is not installed")
        let db = try GeoDatabase(path: path)
        let m = makeModel(chain: [.health, .geo, .failover])
        let table = SteeringTable(model: m, city: db, asn: nil)
        let c = table.names[0]
        let classifier = Classifier(model: m, name: m.names[0])
        var rng = UInt64(7)
        var checked = 0
        for _ in 0..<3000 {
            rng = mix(rng)
            let high = rng & 0xFFFF_FFFF_0000_0000
            let bytes = (0..<4).map { UInt8(truncatingIfNeeded: high >> (56 - 8 * UInt64($0))) }
            if bytes[0] == 10 { continue }  // the CIDR map's range
            let (cls, depth) = c.v4.locate(high: high, low: 0)
            let (expected, _) = classifier.classify(LocationFacts(record: db.lookup(bytes)))
            #expect(c.classes[cls] == expected, "\(bytes)")
            // Scope semantics: the whole network of `depth` bits gets the same class.
            let other = high ^ (depth < 32 ? (mix(rng) & ((UInt64(1) << UInt64(32 - depth)) - 1)) << 32 : 0)
            #expect(c.v4.locate(high: other, low: 0).cls == cls)
            checked += 1
        }
        #expect(checked > 2500)
    }
    @Test("decisions taken ahead for a health state equal the ones taken per query, ramps and all")
    func memoMatchesDecide() throws {
        let db = try GeoDatabase(path: Self.sample)
        var failoverDown = AdminOverrides()
        failoverDown.pools["na"] = AdminOverride(state: .down)
        var endpointDown = AdminOverrides()
        endpointDown.endpoints["eu-1"] = AdminOverride(state: .down)
        // eu-2 stays down: the pool never settles while eu-1 ramps back.
        var otherDown = AdminOverrides()
        otherDown.endpoints["eu-2"] = AdminOverride(state: .down)
        var bothDown = otherDown
        bothDown.endpoints["eu-1"] = AdminOverride(state: .down)
        let chains: [(chain: [PolicyStep], spread: Bool, sticky: Bool)] = [
            ([.health, .geo, .failover], false, false), ([.health, .geo, .failover], true, false),
            ([.health, .geo, .failover, .weighted], false, false), ([.health, .geo, .failover, .weighted], false, true),
            ([.health, .failover], false, false)
        ]
        for (chain, spread, sticky) in chains {
            let m = makeModel(chain: chain, spread: spread, slowStart: 100, sticky: sticky, answers: 2)
            let table = SteeringTable(model: m, city: db, asn: nil)
            for (overrides, after) in [
                (AdminOverrides(), AdminOverrides()), (failoverDown, AdminOverrides()),
                (endpointDown, AdminOverrides()), (bothDown, otherDown)
            ] {
                // Set down at t = 1000 and back up at t = 2000: ramps until 2100.
                var board = HealthBoard(topology: m.health)
                board.setOverrides(overrides, now: 1000)
                board.setOverrides(after, now: 2000)
                for state in [
                    board.view,
                    {
                        var b = HealthBoard(topology: m.health)
                        b.setOverrides(overrides, now: 1000)
                        return b.view
                    }()
                ] {
                    let memo = table.memo(health: state.facts, now: 2000)
                    #expect(memo.names == (sticky ? 0 : 1))
                    var rng = UInt64(chain.count)
                    for t in [2000.0, 2050.0, 2099.0, 2100.0, 5000.0] {
                        for i in 0..<400 {
                            rng = mix(rng)
                            let v6 = i % 4 == 3
                            // Every other IPv4 client in Berlin (198.51.100.0/24), whose first pool is eu.
                            let high =
                                v6
                                ? (i % 8 == 3 ? 0x2001_0DB8_0003_0000 : rng)
                                : (i % 2 == 0 ? 0xC633_6400 << 32 : rng & 0xFFFF_FFFF_0000_0000)
                            let random = mix(rng ^ 99)
                            for family in [4, 6] {
                                var a = NoTrace()
                                var b = NoTrace()
                                let live = table.decide(
                                    name: 0, family: family, clientFamily: v6 ? 6 : 4, high: high, low: 0,
                                    health: state.facts, now: t, random: random, trace: &a)
                                let ahead = table.decide(
                                    name: 0, family: family, clientFamily: v6 ? 6 : 4, high: high, low: 0,
                                    health: state.facts, now: t, random: random, trace: &b, memo: memo)
                                #expect(
                                    live.outcome == ahead.outcome && live.endpoints == ahead.endpoints
                                        && live.pool == ahead.pool && live.scope == ahead.scope && live.ttl == ahead.ttl
                                        && live.repeatable == ahead.repeatable && live.stableUntil == ahead.stableUntil,
                                    "\(chain) spread \(spread) at \(t)")
                            }
                        }
                    }
                }
            }
            // The memo is used where it applies: a geo name that is fully up keeps every class.
            if chain == [.health, .geo, .failover] && !spread {
                let memo = table.memo(health: HealthBoard(topology: m.health).view.facts, now: 0)
                #expect(memo.count == 2 * table.names[0].classes.count)
            }
        }
    }

    @Test("the lookup table gives every address the class and depth of the binary trie it expands")
    func tableMatchesTrie() throws {
        let path = try #require(GeoLite2.path, "maxminddb-geolite2 is not installed")
        let m = makeModel(chain: [.health, .geo, .failover])
        for db in [try GeoDatabase(path: Self.sample), try GeoDatabase(path: path)] {
            var builder = LocationTrieBuilder(
                classifier: Classifier(model: m, name: m.names[0]), city: GeoInput(db), asn: nil)
            for family in [4, 6] {
                let binary = builder.build(family: family, expand: false)
                var table = binary
                table.compile(classes: builder.classes.count)
                #expect(table.compiled && !binary.compiled)
                var rng = UInt64(family)
                var mismatches = 0
                var misprefetched = 0
                var secondLevel = 0
                let probe = try #require(table.table).probe
                for i in 0..<200_000 {
                    rng = mix(rng)
                    // Random addresses, and every 4th one in a few common IPv6 prefixes so that deep levels are reached.
                    var high = family == 4 ? rng & 0xFFFF_FFFF_0000_0000 : rng
                    if family == 6 && i % 4 == 0 {
                        high =
                            [0x2001_0DB8, 0x2A00_1450, 0x2600_1F18, 0x2001_0000][i / 4 % 4] << 32 | high & 0xFFFF_FFFF
                    }
                    let low = family == 4 ? 0 : mix(rng)
                    let found = table.locate(high: high, low: low)
                    if found != binary.walk(high: high, low: low) { mismatches += 1 }
                    // The entries the query path prefetches are the ones `locate` reads: a leaf at the
                    // first level, or the second level's entry (a leaf, or the way further down).
                    let leaf = { (e: UInt32) in
                        (Int(e & LocationTrie.classMask), Int((e >> LocationTrie.classBits) & 0xFF))
                    }
                    if let second = probe.second(high) {
                        secondLevel += 1
                        let e = second.pointee
                        if e & LocationTrie.leafBit != 0 && leaf(e) != found { misprefetched += 1 }
                    } else if leaf(probe.first(high).pointee) != found {
                        misprefetched += 1
                    }
                }
                #expect(mismatches == 0, "family \(family), \(db.databaseType)")
                #expect(misprefetched == 0 && secondLevel > 0, "family \(family), \(db.databaseType)")
            }
        }
    }
}
