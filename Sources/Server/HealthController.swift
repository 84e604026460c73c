import Admin
import CLodestarSys
import Engine
import Foundation
import Health
import Logging
import Prober
import Steering
import Synchronization

/// Owns the mutable health state (the prober's results, the admin's overrides) and publishes it
/// into the snapshot store; serialises admin changes and reloads.
package final class HealthController: @unchecked Sendable {
    let lock = NSLock()
    var board: HealthBoard
    let store: SnapshotStore
    let logger: Logger
    var stateFile: String?
    /// State file writes, off the health lock: the newest contents waiting, and the queue that
    /// writes them (a slow or full disk delays the file, never a health change or a query).
    let pendingState = Mutex<(path: String, data: Data)?>(nil)
    let persistQueue = DispatchQueue(label: "lodestar.state-file")

    package init(store: SnapshotStore, stateFile: String?, logger: Logger) {
        self.store = store
        self.logger = logger
        self.stateFile = stateFile
        board = HealthBoard(topology: (store.current.steering?.table.model ?? SteeringModel()).health)
    }

    /// Overrides persisted by an earlier run (or before a reload).
    static func loadOverrides(_ path: String?, logger: Logger) -> AdminOverrides {
        loadState(path, logger: logger)?.overrides ?? AdminOverrides()
    }

    static func loadState(_ path: String?, logger: Logger) -> StateFile.Contents? {
        guard let path, FileManager.default.fileExists(atPath: path) else { return nil }
        guard let c = StateFile.read(path) else {
            logger.error("\(path): cannot read the state file; starting without admin overrides or saved health")
            return nil
        }
        return c
    }

    /// Endpoint health saved by an earlier run, when younger than `maxAge` seconds.
    static func resumableHealth(_ path: String?, maxAge: Double, logger: Logger) -> [String: (up: Bool, reason: String)] {
        guard let h = loadState(path, logger: logger)?.health else { return [:] }
        let age = Date().timeIntervalSince1970 - h.savedAt
        guard age >= 0, age <= maxAge else {
            logger.info("saved health is \(Int(age)) s old (resume-max-age \(Int(maxAge)) s): checking afresh")
            return [:]
        }
        return h.endpoints.mapValues { ($0.up, $0.reason) }
    }

    /// The prober's findings: endpoints up or down (or unknown again); takes effect on the next query.
    package func observe(_ changes: [EndpointObservation], persist: Bool = true) {
        withLock {
            board.setObserved(changes.map { ($0.endpoint, $0.up, $0.reason) }, now: lodestar_monotonic())
            if persist { persistLocked() }
            publishLocked()
        }
    }

    /// Live RTT excess per region from the prober, for the latency step.
    package func setLiveRTT(_ extra: [String: Double]) {
        withLock {
            board.setLiveRTT(extra, now: lodestar_monotonic())
            publishLocked()
        }
    }

    /// Queues the overrides and the observed health for the state file (called under the lock:
    /// only the encoding happens here; the write is on `persistQueue`, the newest contents winning).
    func persistLocked() {
        guard let stateFile else { return }
        let health = StateFile.Health(savedAt: Date().timeIntervalSince1970,
                                      endpoints: board.observed.mapValues { o in
                                          let reason = o.reason.hasSuffix(" (resumed)") ? String(o.reason.dropLast(10)) : o.reason
                                          return StateFile.Health.Entry(up: o.up, reason: reason)
                                      })
        do {
            let data = try StateFile.encode(StateFile.Contents(overrides: board.overrides, health: health))
            pendingState.withLock { $0 = (stateFile, data) }
        } catch {
            logger.error("\(stateFile): cannot encode the state: \(error)")
            return
        }
        persistQueue.async { [self] in
            guard let (path, data) = pendingState.withLock({ p -> (String, Data)? in defer { p = nil }; return p }) else { return }
            do {
                try StateFile.write(data, to: path)
            } catch {
                logger.error("\(path): cannot save the state: \(error)")
            }
        }
    }

    /// Waits until the state queued so far is on disk (an admin change answers after it is).
    package func flushState() { persistQueue.sync {} }

    /// The health view for a newly loaded model, carrying state over by name; called inside `withLock`.
    func adopt(_ model: SteeringModel, overrides: AdminOverrides?) -> HealthView {
        let now = lodestar_monotonic()
        board.replaceTopology(model.health, now: now)
        if let overrides { board.setOverrides(overrides, now: now) }
        return board.view
    }

    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    package var overrides: AdminOverrides { withLock { board.overrides } }

    /// Sets (or with nil clears) an override; takes effect on the next query; persists.
    package func set(_ kind: OverrideKind, name: String, state: AdminOverride.State??, weight: Double??) throws {
        try withLock {
            let m = board.topology
            let known: Bool
            switch kind {
            case .regions: known = m.region(named: name) != nil
            case .pools: known = m.pool(named: name) != nil
            case .endpoints: known = m.endpoint(named: name) != nil
            }
            guard known else { throw AdminFailure(status: 404, description: "no \(kind.rawValue.dropLast()) named \(name)") }
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
            persistLocked()
            logger.notice("admin: \(kind.rawValue) \(name) → state \(entry.state?.rawValue ?? "auto"), weight \(entry.weight.map { "\($0)" } ?? "configured")")
            publishLocked()
        }
    }

    /// The overrides shared through the cluster (etcd's set replaces this POP's): applied,
    /// persisted (a POP restarted while etcd is away starts from them), published.
    package func setShared(_ o: AdminOverrides) {
        withLock {
            guard o != board.overrides else { return }
            board.setOverrides(o, now: lodestar_monotonic())
            persistLocked()
            publishLocked()
        }
        logger.notice("cluster: shared overrides applied: \(o.regions.count) regions, \(o.pools.count) pools, \(o.endpoints.count) endpoints")
    }

    /// Whether the current model has a thing of this kind and name.
    package func knows(_ kind: OverrideKind, _ name: String) -> Bool {
        withLock {
            let m = board.topology
            switch kind {
            case .regions: return m.region(named: name) != nil
            case .pools: return m.pool(named: name) != nil
            case .endpoints: return m.endpoint(named: name) != nil
            }
        }
    }

    func publishLocked() {
        let current = store.current
        guard current.steering != nil else { return }
        store.replace(current.with(health: board.view))
    }
}
