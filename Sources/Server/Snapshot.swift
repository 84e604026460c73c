import Synchronization
import Zones

/// Everything a query reads, immutable: swapped whole on reload so a query never sees half of one.
package final class Snapshot: Sendable {
    package let engine: QueryEngine
    package let config: Config
    package let zones: ZoneSet
    package let generation: Int

    package init(config: Config, zones: ZoneSet, generation: Int) {
        self.config = config
        self.zones = zones
        self.engine = QueryEngine(zones: zones, options: config.engineOptions)
        self.generation = generation
    }
}

/// Holds the current snapshot; readers take it once per batch of datagrams or per TCP message.
package final class SnapshotStore: Sendable {
    private let box: Mutex<Snapshot>

    package init(_ snapshot: Snapshot) {
        box = Mutex(snapshot)
    }

    package var current: Snapshot { box.withLock { $0 } }

    package func replace(_ snapshot: Snapshot) {
        box.withLock { $0 = snapshot }
    }
}
