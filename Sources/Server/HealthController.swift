import CLodestarSys
package import Engine
import Foundation
package import Health
package import Logging
package import Settings
import Steering
import Synchronization

/// Owns the mutable health state (what the checks say, external input, the admin's overrides)
/// and publishes it into the snapshot store; serialises admin changes and reloads. It is where
/// the shared state (`LocalState`, or the cluster) delivers: the `HealthSink`.
package final class HealthController: HealthSink, @unchecked Sendable {
    let lock = NSLock()
    var board: HealthBoard
    let store: SnapshotStore
    let logger: Logger
    var stateFile: String?
    /// State file writes, off the health lock: the newest contents waiting, and the queue that
    /// writes them (a slow or full disk delays the file, never a health change or a query).
    let pendingState = Mutex<(path: String, data: Data)?>(nil)
    let persistQueue = DispatchQueue(label: "lodestar.state-file")
    /// The external health file, when configured, and how long external input lasts (under `lock`).
    var externalFile: ExternalFileWatcher? = nil
    var externalStaleAfter = 60.0
    /// Once a second: the external file, and external input expiring.
    var ticker: DispatchSourceTimer? = nil

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
    static func resumableHealth(_ path: String?, maxAge: Double, logger: Logger) -> [String: (up: Bool, reason: String)]
    {
        guard let h = loadState(path, logger: logger)?.health else { return [:] }
        let age = Date().timeIntervalSince1970 - h.savedAt
        guard age >= 0, age <= maxAge else {
            logger.info("saved health is \(Int(age)) s old (resume-max-age \(Int(maxAge)) s): checking afresh")
            return [:]
        }
        return h.endpoints.mapValues { ($0.up, $0.reason) }
    }

    /// The external file and the default time to live of external input (`prober:`), at start and reload.
    package func configureExternal(_ settings: ProberSettings) {
        withLock {
            externalStaleAfter = settings.externalStaleAfter
            if externalFile?.path != settings.externalFile {
                externalFile = settings.externalFile.map(ExternalFileWatcher.init(path:))
                let now = lodestar_monotonic()
                if externalFile == nil { board.setFileExternal([:], now: now) }
            }
        }
        guard ticker == nil else { return }
        let t = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "lodestar.external-health"))
        t.schedule(deadline: .now() + 1, repeating: 1)
        t.setEventHandler { [weak self] in self?.tick() }
        t.resume()
        ticker = t
    }

    /// Reads the external file when it changed; drops external input whose time passed.
    func tick() {
        var messages: [ExternalFileWatcher.Message] = []
        var fileChanges: [String] = []
        let (expired, staleAfter) = withLock { () -> ([(endpoint: String, fromFile: Bool)], Double) in
            let now = lodestar_monotonic()
            var changed = false
            if var w = externalFile {
                let r = w.poll(
                    known: { board.topology.endpoint(named: $0) != nil }, staleAfter: externalStaleAfter, now: now,
                    wallNow: Date().timeIntervalSince1970)
                externalFile = w
                messages = r.messages
                if let inputs = r.inputs, inputs != board.fileExternal {
                    // Each endpoint whose input from the file changed, said once (as the API's are).
                    for name in Set(inputs.keys).union(board.fileExternal.keys).sorted() {
                        let before = board.fileExternal[name]
                        let after = inputs[name]
                        guard before?.up != after?.up || before?.reason != after?.reason else { continue }
                        let state = after.map { $0.up ? "up" : "down" } ?? "auto"
                        fileChanges.append(
                            "external health (file): \(name) → \(state)\(after.map { " (\($0.reason))" } ?? "")")
                    }
                    board.setFileExternal(inputs, now: now)
                    changed = true
                }
            }
            let expired = board.expireExternal(now: now)
            if changed || !expired.isEmpty { publishLocked() }
            return (expired, externalStaleAfter)
        }
        for line in fileChanges { logger.notice("\(line)") }
        for m in messages {
            switch m.level {
            case .error: logger.error("\(m.text)")
            case .warning: logger.warning("\(m.text)")
            }
        }
        let stale = staleAfter == staleAfter.rounded() ? "\(Int(staleAfter)) s" : "\(staleAfter) s"
        for (name, fromFile) in expired {
            logger.warning(
                "external health of \(name) expired (\(fromFile ? "the file is older than \(stale)" : "its ttl passed")); ignored"
            )
        }
    }

    package func stopTicker() {
        ticker?.cancel()
        ticker = nil
    }

    // HealthSink

    package func checked(_ verdicts: [EndpointObservation]) { observe(verdicts) }
    package func liveRTT(_ extra: [String: Double]) { setLiveRTT(extra) }
    package func sharedOverrides(_ o: AdminOverrides) { setShared(o) }

    package func external(endpoint: String, up: Bool?, reason: String, ttl: Double) {
        withLock {
            let now = lodestar_monotonic()
            board.setExternal(
                endpoint: endpoint, up.map { ExternalInput(up: $0, reason: reason, expires: now + ttl) }, now: now)
            publishLocked()
        }
    }

    package func applyOverride(_ kind: OverrideKind, name: String, state: AdminOverride.State??, weight: Double??)
        throws
    {
        try set(kind, name: name, state: state, weight: weight)
    }

    /// External input in force, by endpoint.
    package var externalInputs: [String: ExternalInput] {
        // The admin API's input first; the file's where the API gave none.
        withLock { board.external.merging(board.fileExternal) { api, _ in api } }
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
        let health = StateFile.Health(
            savedAt: Date().timeIntervalSince1970,
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
            guard
                let (path, data) = pendingState.withLock({ p -> (String, Data)? in
                    defer { p = nil }
                    return p
                })
            else { return }
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
        try lock.withLock(body)
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
            guard known else { throw SharedStateError(.notFound, "no \(kind.rawValue.dropLast()) named \(name)") }
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
            logger.notice(
                "admin: \(kind.rawValue) \(name) → state \(entry.state?.rawValue ?? "auto"), weight \(entry.weight.map { "\($0)" } ?? "configured")"
            )
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
        logger.notice(
            "cluster: shared overrides applied: \(o.regions.count) regions, \(o.pools.count) pools, \(o.endpoints.count) endpoints"
        )
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
