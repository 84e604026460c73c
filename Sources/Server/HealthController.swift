import CLodestarSys
import Foundation
import Logging
import Steering

/// Owns the mutable health state (the prober's results, the admin's overrides) and publishes it
/// into the snapshot store; serialises admin changes and reloads.
package final class HealthController: @unchecked Sendable {
    let lock = NSLock()
    var board: HealthBoard
    let store: SnapshotStore
    let logger: Logger
    var stateFile: String?

    package init(store: SnapshotStore, stateFile: String?, logger: Logger) {
        self.store = store
        self.logger = logger
        self.stateFile = stateFile
        board = HealthBoard(model: store.current.steering?.table.model ?? SteeringModel())
    }

    /// Overrides persisted by an earlier run (or before a reload).
    static func loadOverrides(_ path: String?, logger: Logger) -> AdminOverrides {
        guard let path else { return AdminOverrides() }
        guard FileManager.default.fileExists(atPath: path) else { return AdminOverrides() }
        guard let o = StateFile.read(path) else {
            logger.error("\(path): cannot read the state file; starting without admin overrides")
            return AdminOverrides()
        }
        return o
    }

    /// The health view for a newly loaded model, carrying state over by name; called inside `withLock`.
    func adopt(_ model: SteeringModel, overrides: AdminOverrides?) -> HealthView {
        let now = lodestar_monotonic()
        board.replaceModel(model, now: now)
        if let overrides { board.setOverrides(overrides, now: now) }
        return board.view
    }

    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    package var overrides: AdminOverrides { withLock { board.overrides } }

    package enum Kind: String, Sendable { case regions, pools, endpoints }

    package struct Failure: Error, CustomStringConvertible {
        package var status: Int
        package var description: String
    }

    /// Sets (or with nil clears) an override; takes effect on the next query; persists.
    package func set(_ kind: Kind, name: String, state: AdminOverride.State??, weight: Double??) throws {
        try withLock {
            let m = board.model
            let known: Bool
            switch kind {
            case .regions: known = m.region(named: name) != nil
            case .pools: known = m.pool(named: name) != nil
            case .endpoints: known = m.endpoint(named: name) != nil
            }
            guard known else { throw Failure(status: 404, description: "no \(kind.rawValue.dropLast()) named \(name)") }
            var o = board.overrides
            var entry: AdminOverride
            switch kind {
            case .regions: entry = o.regions[name] ?? AdminOverride()
            case .pools: entry = o.pools[name] ?? AdminOverride()
            case .endpoints: entry = o.endpoints[name] ?? AdminOverride()
            }
            if let state { entry.state = state }
            if let weight { entry.weight = weight }
            let value: AdminOverride? = entry.isEmpty ? nil : entry
            switch kind {
            case .regions: o.regions[name] = value
            case .pools: o.pools[name] = value
            case .endpoints: o.endpoints[name] = value
            }
            board.setOverrides(o, now: lodestar_monotonic())
            if let stateFile {
                do {
                    try StateFile.write(o, to: stateFile)
                } catch {
                    logger.error("\(stateFile): cannot save admin overrides: \(error)")
                }
            }
            logger.notice("admin: \(kind.rawValue) \(name) → state \(entry.state?.rawValue ?? "auto"), weight \(entry.weight.map { "\($0)" } ?? "configured")")
            publishLocked()
        }
    }

    func publishLocked() {
        let current = store.current
        guard current.steering != nil else { return }
        store.replace(current.with(health: board.view))
    }
}
