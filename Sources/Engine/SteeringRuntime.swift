import CLodestarSys
import DNSWire
public import Health
public import Steering
public import Zones

/// The compiled steering table, the health in force, and the answer counters (shared across the
/// health updates of one table).
public final class SteeringRuntime: Sendable {
    public let table: SteeringTable
    public let health: HealthView
    /// `health`'s flat arrays, held directly so a query takes one reference.
    let facts: HealthFacts
    public let counters: AnswerCounters
    /// The decisions of this health state taken ahead, per name, location class and family.
    public let memo: DecisionMemo
    /// Where each name lives: (zone, node) → index into `table.names`, so a query at a steered node
    /// finds its name without hashing it again. Scanned linearly: a handful of names per snapshot.
    let homeZone: [ObjectIdentifier]
    let homeNode: [Int32]

    public init(table: SteeringTable, health: HealthView, counters: AnswerCounters, zones: ZoneSet) {
        self.table = table
        self.health = health
        self.facts = health.facts
        self.counters = counters
        self.memo = table.memo(health: health.facts, now: Double(lodestar_monotonic_ns()) * 1e-9)
        var zs: [ObjectIdentifier] = []
        var ns: [Int32] = []
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
        let z = ObjectIdentifier(zone)
        let n = Int32(node)
        for i in 0..<homeNode.count where homeNode[i] == n && homeZone[i] == z { return i }
        return -1
    }
}
