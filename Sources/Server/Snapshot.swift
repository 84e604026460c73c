import CLodestarSys
import DNSWire
import Steering
import Synchronization
import Zones

/// Everything a query reads, immutable: swapped whole on reload, and on every health or admin
/// change, so a query never sees half of one.
package final class Snapshot: Sendable {
    package let engine: QueryEngine
    package let config: Config
    package let zones: ZoneSet
    package let steering: SteeringRuntime?
    package let generation: Int

    package init(config: Config, zones: ZoneSet, steering: SteeringRuntime? = nil, generation: Int) {
        self.config = config
        self.zones = zones
        self.steering = steering
        self.engine = QueryEngine(zones: zones, options: config.engineOptions, steering: steering)
        self.generation = generation
    }

    /// The same snapshot with other health: for probe results and admin changes.
    package func with(health: HealthView) -> Snapshot {
        Snapshot(config: config, zones: zones, steering: steering?.with(health: health), generation: generation)
    }
}

/// The compiled steering table, the health in force, and the answer counters (shared across the
/// health updates of one table).
package final class SteeringRuntime: Sendable {
    package let table: SteeringTable
    package let health: HealthView
    /// `health`'s flat arrays, held directly so a query takes one reference.
    let facts: HealthFacts
    package let counters: AnswerCounters
    /// The decisions of this health state taken ahead, per name, location class and family.
    package let memo: DecisionMemo
    /// Where each name lives: (zone, node) → index into `table.names`, so a query at a steered node
    /// finds its name without hashing it again. Scanned linearly: a handful of names per snapshot.
    let homeZone: [ObjectIdentifier]
    let homeNode: [Int32]

    package init(table: SteeringTable, health: HealthView, counters: AnswerCounters, zones: ZoneSet) {
        self.table = table
        self.health = health
        self.facts = health.facts
        self.counters = counters
        self.memo = table.memo(health: health.facts, now: Double(lodestar_monotonic_ns()) * 1e-9)
        var zs: [ObjectIdentifier] = [], ns: [Int32] = []
        for c in table.names {
            let (z, n) = c.config.wire.withUnsafeBytes { wire -> (ObjectIdentifier?, Int32) in
                let labels = LabelOffsets(wire)
                guard let zone = zones.zone(for: wire, labels: labels) else { return (nil, -1) }
                return (ObjectIdentifier(zone), Int32(zone.find(wire)))
            }
            zs.append(z ?? ObjectIdentifier(counters))  // never a zone: matches nothing
            ns.append(n)
        }
        homeZone = zs
        homeNode = ns
    }

    init(_ other: SteeringRuntime, health: HealthView) {
        table = other.table
        self.health = health
        facts = health.facts
        counters = other.counters
        memo = table.memo(health: health.facts, now: Double(lodestar_monotonic_ns()) * 1e-9)
        homeZone = other.homeZone
        homeNode = other.homeNode
    }

    func with(health: HealthView) -> SteeringRuntime { SteeringRuntime(self, health: health) }

    /// The name at `node` of `zone`, or -1.
    @inline(__always)
    func name(zone: Zone, node: Int) -> Int {
        let z = ObjectIdentifier(zone), n = Int32(node)
        for i in 0..<homeNode.count where homeNode[i] == n && homeZone[i] == z { return i }
        return -1
    }
}

/// Answers given, per endpoint and per (name, pool), counted with relaxed atomics.
package final class AnswerCounters: @unchecked Sendable {
    let endpoints: UnsafeMutablePointer<UInt64>
    let byNamePool: UnsafeMutablePointer<UInt64>
    let endpointCount: Int
    let poolCount: Int
    let nameCount: Int
    /// Per name: the load-balanced queries the policy did not answer, by what happened instead.
    let outcomes: UnsafeMutablePointer<UInt64>

    package enum Fallback: Int, CaseIterable {
        /// All down, `fail-open`: every configured endpoint.
        case failOpen
        /// All down with `last-resort`, or no endpoint of the queried family: the zone's RRset.
        case zone
        case servfail

        package var label: String { ["fail-open", "zone", "servfail"][rawValue] }
    }

    package init(model: SteeringModel) {
        endpointCount = model.endpoints.count
        poolCount = model.pools.count
        nameCount = model.names.count
        endpoints = .allocate(capacity: max(1, endpointCount))
        endpoints.initialize(repeating: 0, count: max(1, endpointCount))
        byNamePool = .allocate(capacity: max(1, nameCount * poolCount))
        byNamePool.initialize(repeating: 0, count: max(1, nameCount * poolCount))
        outcomes = .allocate(capacity: max(1, nameCount * 3))
        outcomes.initialize(repeating: 0, count: max(1, nameCount * 3))
    }

    deinit {
        endpoints.deallocate()
        byNamePool.deallocate()
        outcomes.deallocate()
    }

    @inline(__always)
    func count(name: Int, pool: Int) { lodestar_count(byNamePool + (name * poolCount + pool), 1) }
    @inline(__always)
    func count(endpoint: Int) { lodestar_count(endpoints + endpoint, 1) }
    @inline(__always)
    func count(name: Int, fallback: Fallback) { lodestar_count(outcomes + (name * 3 + fallback.rawValue), 1) }

    package func endpoint(_ e: Int) -> UInt64 { lodestar_read(endpoints + e) }
    package func namePool(_ n: Int, _ p: Int) -> UInt64 { lodestar_read(byNamePool + (n * poolCount + p)) }
    package func fallbacks(_ n: Int, _ f: Fallback) -> UInt64 { lodestar_read(outcomes + (n * 3 + f.rawValue)) }
}

/// What one response counted in `AnswerCounters`, kept so that a cached copy of the response
/// counts the same when it is sent again. Holds one decision; a response with more is not cached.
package struct AnswerCount {
    var name: Int32 = -1
    var pool: Int32 = -1
    var fallback: Int8 = -1
    var endpointCount: Int8 = 0
    /// The first `endpointCount` are the endpoints counted (a SIMD vector: two stores to set up).
    var endpoints = SIMD8<Int32>()

    package init() {}

    @inline(__always)
    mutating func count(name n: Int, pool p: Int, in counters: AnswerCounters) {
        counters.count(name: n, pool: p)
        name = Int32(n)
        pool = Int32(p)
    }

    @inline(__always)
    mutating func count(name n: Int, fallback f: AnswerCounters.Fallback, in counters: AnswerCounters) {
        counters.count(name: n, fallback: f)
        name = Int32(n)
        fallback = Int8(f.rawValue)
    }

    @inline(__always)
    mutating func count(endpoint e: Int, in counters: AnswerCounters) {
        counters.count(endpoint: e)
        if endpointCount < 8 { endpoints[Int(endpointCount)] = Int32(e); endpointCount += 1 }
    }

    /// Counts again what was counted the first time.
    @inline(__always)
    func replay(in counters: AnswerCounters) {
        guard name >= 0 else { return }
        if pool >= 0 { counters.count(name: Int(name), pool: Int(pool)) }
        if fallback >= 0 { counters.count(name: Int(name), fallback: AnswerCounters.Fallback(rawValue: Int(fallback))!) }
        for i in 0..<Int(endpointCount) { counters.count(endpoint: Int(endpoints[i])) }
    }
}

/// Holds the current snapshot; readers take it once per batch of datagrams or per TCP message.
/// `version` changes with every replacement, so a hot loop can keep its snapshot until then
/// without taking the lock.
package final class SnapshotStore: Sendable {
    private let box: Mutex<Snapshot>
    private let counter = Atomic<Int>(0)

    package init(_ snapshot: Snapshot) {
        box = Mutex(snapshot)
    }

    package var current: Snapshot { box.withLock { $0 } }

    /// Bumped after each `replace`: a reader that saw version v before taking `current` holds a
    /// snapshot at least as new as v.
    @inline(__always)
    package var version: Int { counter.load(ordering: .acquiring) }

    package func replace(_ snapshot: Snapshot) {
        box.withLock { $0 = snapshot }
        counter.add(1, ordering: .releasing)
    }
}
