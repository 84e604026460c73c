import CLodestarSys
import Dispatch
import Foundation
import Logging
import NIOCore
import NIOPosix
import Steering

/// Prober settings (`prober:` in the config).
package struct ProberSettings: Sendable, Equatable {
    /// Most checks in flight at once; the rest wait their turn (and count as late).
    package var concurrency = 64
    /// Before answering, the first round of checks may take this long; checks still running then
    /// leave their endpoint "not checked yet" (counted up).
    package var coldStartTimeout = 5.0
    /// Health persisted in the state file is resumed at start when it is younger than this.
    package var resumeMaxAge = 300.0
    /// External health input: a file of `NAME up|down [reason]` lines, watched.
    package var externalFile: String? = nil
    /// External input older than this (the file's modification time, or the admin's POST) is ignored.
    package var externalStaleAfter = 60.0

    package init() {}
}

/// An endpoint's health as the prober sees it; `up == nil`: nothing known (counted up).
package struct EndpointObservation: Sendable, Equatable {
    package var endpoint: String
    package var up: Bool?
    package var reason: String

    package init(endpoint: String, up: Bool?, reason: String) {
        self.endpoint = endpoint
        self.up = up
        self.reason = reason
    }
}

/// What the admin API and /metrics show of one check.
package struct CheckStatus: Sendable {
    package var endpoint: String
    package var target: String
    package var kind: String
    package var up: Bool?
    package var reason: String
    package var rttMs: Double?
    package var lastRttMs: Double?
    package var penalty: Double
    package var suppressed: Bool
    package var flaps: Int
    package var runs: Int
    package var failures: [String: Int]
    package var certDaysLeft: Double?
    package var secondsSinceLast: Double?
}

/// What the admin API and /metrics show of the prober as a whole.
package struct ProberStatus: Sendable {
    package var checks: [CheckStatus] = []
    package var endpoints: [EndpointObservation] = []
    package var external: [String: (up: Bool, reason: String, expiresIn: Double)] = [:]
    package var regionRTTMs: [String: (rtt: Double, extra: Double)] = [:]
    package var runs = 0
    /// Checks that started later than scheduled by more than a quarter of their interval.
    package var late = 0
    /// Largest delay between due and start (seconds), over the last minute and ever.
    package var maxLagRecent = 0.0
    package var maxLag = 0.0
    package var inFlight = 0
}

/// Runs every endpoint's checks on a schedule, on its own event-loop thread (niced, so probing
/// never takes CPU from the DNS listeners), and reports endpoint health changes and live RTT.
///
/// All mutable state is guarded by `lock`; probes run on `loop`.
package final class Prober: @unchecked Sendable {
    /// One check of one endpoint with its state and schedule.
    final class ScheduledCheck {
        let endpoint: Int
        let spec: CheckSpec
        var state: CheckState
        var rtt = RTTAverage()
        /// The best RTT of the recent past: follows a lower sample at once, a higher one by 1% per sample.
        var floor: Double? = nil
        var lastRTT: Double? = nil
        var last: ProbeResult? = nil
        var lastAt: Double? = nil
        var failures: [String: Int] = [:]
        var runs = 0
        var due: Double = 0
        /// When the current run was scheduled to start (due plus its jitter).
        var fireAt: Double = 0
        var inFlight = false
        var queued = false
        var timer: Scheduled<Void>? = nil
        var heldLogged = false

        init(endpoint: Int, spec: CheckSpec, state: CheckState) {
            self.endpoint = endpoint
            self.spec = spec
            self.state = state
        }
    }

    struct EndpointEntry {
        var name: String
        var region: String
        var mode: CheckMode
        var tasks: [Int] = []
        var reported: EndpointObservation
    }

    let logger: Logger
    let group: MultiThreadedEventLoopGroup
    let loop: EventLoop
    let runner: ProbeRunner
    let lock = NSLock()
    let onChange: @Sendable ([EndpointObservation]) -> Void
    let onRTT: @Sendable ([String: Double]) -> Void

    var settings = ProberSettings()
    var tasks: [ScheduledCheck] = []
    var endpoints: [EndpointEntry] = []
    var waiting: [Int] = []
    var inFlight = 0
    var generation = 0
    var external: [String: (up: Bool, reason: String, expires: Double, fromFile: Bool)] = [:]
    var externalMtime: Double? = nil
    var pending: [EndpointObservation] = []
    var flushScheduled = false
    var lastRTTSent: [String: Double] = [:]
    var firstRoundLeft = 0
    var firstRoundDone: DispatchSemaphore? = nil
    var runs = 0, late = 0
    var maxLag = 0.0
    var lagWindow: [(at: Double, lag: Double)] = []
    var ticker: RepeatedTask? = nil
    var stopped = false

    package init(logger: Logger, onChange: @escaping @Sendable ([EndpointObservation]) -> Void,
                 onRTT: @escaping @Sendable ([String: Double]) -> Void) {
        self.logger = logger
        self.onChange = onChange
        self.onRTT = onRTT
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        loop = group.next()
        runner = ProbeRunner(loop: loop)
        // Nice the prober's thread: DNS listeners win contention for CPU (nice 5 weighs about a third
        // of nice 0), yet under a query flood filling every core it keeps enough to hold its schedule.
        loop.execute { _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(lodestar_thread_id()), 5) }
        ticker = loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { [weak self] _ in
            self?.tick()
        }
    }

    static func now() -> Double { lodestar_monotonic() }

    /// (Re)configures from a model: checks that exist by (endpoint, spec) keep their state; new ones
    /// run at once. `resume` seeds endpoints from persisted health (cold start from disk).
    package func configure(model: SteeringModel, settings: ProberSettings, resume: [String: (up: Bool, reason: String)] = [:]) {
        var kept: [CheckKey: ScheduledCheck] = [:]
        lock.lock()
        self.settings = settings
        for t in tasks {
            t.timer?.cancel()
            kept[CheckKey(endpoint: endpoints[t.endpoint].name, spec: t.spec)] = t
        }
        generation += 1
        let gen = generation
        var newTasks: [ScheduledCheck] = []
        var newEndpoints: [EndpointEntry] = []
        var fresh = Set<Int>()
        for (i, e) in model.endpoints.enumerated() {
            let region = model.regions[model.pools[e.pool].region].name
            let old = endpoints.first { $0.name == e.name }
            var entry = EndpointEntry(name: e.name, region: region, mode: e.checkMode,
                                      reported: old?.reported ?? EndpointObservation(endpoint: e.name, up: nil, reason: "not checked yet"))
            for spec in e.checks {
                if let t = kept.removeValue(forKey: CheckKey(endpoint: e.name, spec: spec)) {
                    let copy = ScheduledCheck(endpoint: i, spec: spec, state: t.state)
                    (copy.rtt, copy.floor, copy.lastRTT, copy.last, copy.lastAt) = (t.rtt, t.floor, t.lastRTT, t.last, t.lastAt)
                    (copy.failures, copy.runs, copy.due) = (t.failures, t.runs, t.due)
                    entry.tasks.append(newTasks.count)
                    newTasks.append(copy)
                } else {
                    var state = CheckState(policy: spec.policy)
                    if let r = resume[e.name] { state = CheckState(policy: spec.policy, resumed: r.up, reason: r.reason) }
                    entry.tasks.append(newTasks.count)
                    fresh.insert(newTasks.count)
                    newTasks.append(ScheduledCheck(endpoint: i, spec: spec, state: state))
                }
            }
            if let r = resume[e.name], old == nil {
                entry.reported = EndpointObservation(endpoint: e.name, up: r.up, reason: r.reason + " (resumed)")
            }
            newEndpoints.append(entry)
        }
        tasks = newTasks
        endpoints = newEndpoints
        waiting = []
        inFlight = 0
        let now = Self.now()
        firstRoundLeft = fresh.count
        for (i, t) in tasks.enumerated() {
            t.due = fresh.contains(i) ? now : max(t.due, now)
            schedule(i, at: t.due, generation: gen)
        }
        // Endpoints that lost their checks forget what the checks said.
        var changes: [EndpointObservation] = []
        for i in endpoints.indices { if let c = recombine(i) { changes.append(c) } }
        lock.unlock()
        if !changes.isEmpty { onChange(changes) }
    }

    /// A check carries its state over a reload when its endpoint and every setting are unchanged.
    struct CheckKey: Hashable {
        var endpoint: String
        var spec: CheckSpec
    }

    /// Blocks until every new check has a first result or `timeout` passes; returns how many are
    /// still without one.
    package func waitForFirstRound(timeout: Double) -> Int {
        lock.lock()
        guard firstRoundLeft > 0 else { lock.unlock(); return 0 }
        let sem = DispatchSemaphore(value: 0)
        firstRoundDone = sem
        lock.unlock()
        _ = sem.wait(timeout: .now() + timeout)
        lock.lock()
        firstRoundDone = nil
        let left = firstRoundLeft
        lock.unlock()
        // Deliver what the round found before returning: the caller is about to answer queries.
        // Flushes run on the loop in order, so this one runs after any already scheduled.
        try? loop.submit { self.flushPending() }.wait()
        return left
    }

    package func stop() {
        lock.lock()
        stopped = true
        for t in tasks { t.timer?.cancel() }
        lock.unlock()
        ticker?.cancel()
        try? group.syncShutdownGracefully()
    }

    // MARK: - Scheduling (under `lock`)

    func schedule(_ i: Int, at due: Double, generation gen: Int) {
        let t = tasks[i]
        let jitter = t.spec.jitter > 0 ? Double.random(in: 0..<(t.spec.jitter * t.spec.interval)) : 0
        t.fireAt = due + jitter
        let delay = max(0, t.fireAt - Self.now())
        t.timer = loop.scheduleTask(in: .nanoseconds(Int64(delay * 1e9))) { [weak self] in
            self?.fire(i, generation: gen)
        }
    }

    func fire(_ i: Int, generation gen: Int) {
        lock.lock()
        defer { lock.unlock() }
        guard gen == generation, !stopped, i < tasks.count else { return }
        let t = tasks[i]
        guard !t.inFlight, !t.queued else { return }
        if inFlight >= settings.concurrency {
            t.queued = true
            waiting.append(i)
            return
        }
        launch(i, generation: gen)
    }

    func launch(_ i: Int, generation gen: Int) {
        let t = tasks[i]
        let now = Self.now()
        let lag = max(0, now - t.fireAt)
        runs += 1
        if lag > t.spec.interval / 4 { late += 1 }
        maxLag = max(maxLag, lag)
        lagWindow.append((now, lag))
        t.inFlight = true
        inFlight += 1
        runner.run(t.spec).whenSuccess { [weak self] result in
            self?.completed(i, generation: gen, result: result)
        }
    }

    func completed(_ i: Int, generation gen: Int, result: ProbeResult) {
        var changes: [EndpointObservation] = []
        lock.lock()
        guard gen == generation, !stopped, i < tasks.count else {
            lock.unlock()
            return
        }
        let t = tasks[i]
        let now = Self.now()
        t.inFlight = false
        inFlight -= 1
        let first = t.runs == 0 && t.last == nil
        t.runs += 1
        t.last = result
        t.lastAt = now
        let name = endpoints[t.endpoint].name
        switch result.outcome {
        case .success(let rtt):
            t.rtt.add(rtt)
            t.lastRTT = rtt
            t.floor = t.floor.map { rtt < $0 ? rtt : $0 + 0.01 * (rtt - $0) } ?? rtt
        case .failure:
            t.failures[result.kind, default: 0] += 1
        }
        for a in t.state.record(result.outcome, now: now) {
            switch a {
            case .wentUp(let reason):
                t.heldLogged = false
                logger.notice("check \(t.spec.target) of \(name): up (\(reason))")
            case .wentDown(let reason):
                logger.warning("check \(t.spec.target) of \(name): down (\(reason))")
            case .heldDown(let until, let penalty):
                if !t.heldLogged {
                    t.heldLogged = true
                    logger.warning("check \(t.spec.target) of \(name): passing but held down by flap damping (penalty \(Int(penalty)), at most \(Int(until - now)) s more)")
                }
            }
        }
        if let c = recombine(t.endpoint) { changes.append(c) }
        if first && firstRoundLeft > 0 {
            firstRoundLeft -= 1
            if firstRoundLeft == 0 { firstRoundDone?.signal() }
        }
        // Next run: on the fixed schedule; a check that fell behind starts again from now.
        t.due = max(t.due + t.spec.interval, now)
        schedule(i, at: t.due, generation: gen)
        while inFlight < settings.concurrency, !waiting.isEmpty {
            let j = waiting.removeFirst()
            tasks[j].queued = false
            launch(j, generation: gen)
        }
        queue(changes)
        lock.unlock()
    }

    /// Coalesces changes made in one turn of the loop into one report.
    func queue(_ changes: [EndpointObservation]) {
        guard !changes.isEmpty else { return }
        pending += changes
        guard !flushScheduled else { return }
        flushScheduled = true
        loop.execute { [weak self] in self?.flushPending() }
    }

    /// Reports the queued changes; runs on the loop.
    func flushPending() {
        lock.lock()
        let batch = pending
        pending = []
        flushScheduled = false
        lock.unlock()
        if !batch.isEmpty { onChange(batch) }
    }

    /// The endpoint's state from its checks and external input; the change to report, if any.
    func recombine(_ e: Int) -> EndpointObservation? {
        let entry = endpoints[e]
        var states: [(up: Bool?, reason: String)] = entry.tasks.map { i in
            let t = tasks[i]
            return (t.state.up, t.state.up == nil ? "not checked yet" : "\(t.spec.target): \(t.state.lastReason)")
        }
        if let x = external[entry.name] { states.append((x.up, "external: \(x.reason)")) }
        var obs = EndpointObservation(endpoint: entry.name, up: nil, reason: "not checked")
        if !states.isEmpty {
            let down = states.filter { $0.up == false }, up = states.filter { $0.up == true }
            switch entry.mode {
            case .all:
                if let d = down.first { obs.up = false; obs.reason = d.reason }
                else if up.count == states.count { obs.up = true; obs.reason = states.count == 1 ? states[0].reason : "all \(states.count) checks pass" }
                else { obs.reason = "not checked yet" }
            case .any:
                if let u = up.first { obs.up = true; obs.reason = u.reason }
                else if down.count == states.count { obs.up = false; obs.reason = down.map(\.reason).joined(separator: "; ") }
                else { obs.reason = "not checked yet" }
            }
        }
        let before = entry.reported
        // Only up/down transitions are reported (and logged); reasons while down refresh quietly.
        guard obs.up != before.up || (obs.up == false && obs.reason != before.reason) else { return nil }
        endpoints[e].reported = obs
        if obs.up != before.up {
            let state = obs.up.map { $0 ? "up" : "down" } ?? "not checked"
            logger.notice("endpoint \(entry.name): \(state) (\(obs.reason))")
        }
        return obs
    }

    // MARK: - Once a second: external input, live RTT, lag window

    func tick() {
        let now = Self.now()
        var changes: [EndpointObservation] = []
        var rtt: [String: Double]? = nil
        lock.lock()
        if stopped { lock.unlock(); return }
        lagWindow.removeAll { now - $0.at > 60 }
        readExternalFile()
        for (name, x) in external where x.expires <= now {
            external[name] = nil
            logger.warning("external health of \(name) expired (\(x.fromFile ? "the file is older than \(seconds(settings.externalStaleAfter))" : "its ttl passed")); ignored")
            if let e = endpoints.firstIndex(where: { $0.name == name }), let c = recombine(e) { changes.append(c) }
        }
        let extra = regionExtra()
        if extra.keys != lastRTTSent.keys || extra.contains(where: { abs($0.value - (lastRTTSent[$0.key] ?? 0)) >= 1 }) {
            lastRTTSent = extra
            rtt = extra
        }
        queue(changes)
        lock.unlock()
        if let rtt { onRTT(rtt) }
    }

    /// Per region: mean over its passing checks of (EWMA − recent best), in milliseconds.
    func regionExtra() -> [String: Double] { regionRTT().compactMapValues(\.extra) }

    /// Per region, in milliseconds: the mean RTT average of its checks, and the mean excess of the
    /// passing ones over their recent best (nil while none passes).
    func regionRTT() -> [String: (rtt: Double, extra: Double?)] {
        var rtt: [String: (sum: Double, n: Double)] = [:], extra: [String: (sum: Double, n: Double)] = [:]
        for t in tasks {
            guard let avg = t.rtt.value else { continue }
            let r = endpoints[t.endpoint].region
            rtt[r, default: (0, 0)].sum += avg * 1000
            rtt[r, default: (0, 0)].n += 1
            guard case .success? = t.last?.outcome, let floor = t.floor else { continue }
            extra[r, default: (0, 0)].sum += max(0, avg - floor) * 1000
            extra[r, default: (0, 0)].n += 1
        }
        return rtt.reduce(into: [:]) { out, r in
            out[r.key] = (r.value.sum / r.value.n, extra[r.key].map { ($0.sum / $0.n).rounded() })
        }
    }

    // MARK: - External input

    /// Health of an endpoint checked elsewhere, for `ttl` seconds (default the stale timeout).
    package func setExternal(endpoint: String, up: Bool?, reason: String, ttl: Double?) -> Bool {
        lock.lock()
        guard let e = endpoints.firstIndex(where: { $0.name == endpoint }) else { lock.unlock(); return false }
        if let up {
            external[endpoint] = (up, reason, Self.now() + (ttl ?? settings.externalStaleAfter), false)
        } else {
            external[endpoint] = nil
        }
        let c = recombine(e)
        lock.unlock()
        // At once, so the caller (the admin API) sees its change in force when this returns.
        if let c { onChange([c]) }
        return true
    }

    /// Re-reads the external file when it changed; its entries expire `externalStaleAfter` after
    /// its modification time. A line that cannot be parsed keeps the previous content.
    func readExternalFile() {
        guard let path = settings.externalFile else { return }
        guard let attrs = try? FileManager.default.attributesOfItem(atPath: path),
              let mtime = (attrs[.modificationDate] as? Date)?.timeIntervalSince1970 else {
            if externalMtime != -1 {
                logger.error("\(path): cannot read the external health file")
                externalMtime = -1
            }
            return
        }
        guard mtime != externalMtime else { return }
        externalMtime = mtime
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return }
        var entries: [String: (Bool, String)] = [:]
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard !words.isEmpty else { continue }
            guard words.count >= 2, ["up", "down"].contains(words[1].lowercased()) else {
                logger.error("\(path):\(n + 1): expected \"ENDPOINT up|down [reason]\"; keeping the previous content")
                return
            }
            let name = String(words[0])
            guard endpoints.contains(where: { $0.name == name }) else {
                logger.warning("\(path):\(n + 1): no endpoint named \(name)")
                continue
            }
            let reason = words.count > 2 ? words[2...].joined(separator: " ") : (words[1].lowercased() == "up" ? "up" : "down")
            entries[name] = (words[1].lowercased() == "up", reason)
        }
        let age = Date().timeIntervalSince1970 - mtime
        let expires = Self.now() + settings.externalStaleAfter - age
        var changed: [Int] = []
        for (name, x) in external where x.fromFile && entries[name] == nil {
            external[name] = nil
            if let e = endpoints.firstIndex(where: { $0.name == name }) { changed.append(e) }
        }
        if expires > Self.now() {
            for (name, v) in entries {
                external[name] = (v.0, v.1, expires, true)
                if let e = endpoints.firstIndex(where: { $0.name == name }) { changed.append(e) }
            }
        } else if !entries.isEmpty {
            logger.warning("\(path): older than \(seconds(settings.externalStaleAfter)); ignored")
        }
        queue(changed.compactMap { recombine($0) })
    }

    // MARK: - Status

    /// Endpoint states to persist (only those with a known state).
    package func persistable() -> [String: (up: Bool, reason: String)] {
        lock.lock()
        defer { lock.unlock() }
        var out: [String: (up: Bool, reason: String)] = [:]
        for e in endpoints { if let up = e.reported.up { out[e.name] = (up, e.reported.reason) } }
        return out
    }

    package func status() -> ProberStatus {
        lock.lock()
        defer { lock.unlock() }
        let now = Self.now()
        var s = ProberStatus()
        s.checks = tasks.map { t in
            CheckStatus(endpoint: endpoints[t.endpoint].name, target: t.spec.target, kind: t.spec.kind.rawValue,
                        up: t.state.up, reason: t.state.lastReason, rttMs: t.rtt.value.map { $0 * 1000 },
                        lastRttMs: t.lastRTT.map { $0 * 1000 }, penalty: t.state.penalty(at: now),
                        suppressed: t.state.isSuppressed(at: now), flaps: t.state.flaps, runs: t.runs,
                        failures: t.failures, certDaysLeft: t.last?.certDaysLeft, secondsSinceLast: t.lastAt.map { now - $0 })
        }
        s.endpoints = endpoints.map(\.reported)
        for (k, v) in external { s.external[k] = (v.up, v.reason, v.expires - now) }
        s.regionRTTMs = regionRTT().mapValues { ($0.rtt, $0.extra ?? 0) }
        s.runs = runs
        s.late = late
        s.maxLag = maxLag
        s.maxLagRecent = lagWindow.map(\.lag).max() ?? 0
        s.inFlight = inFlight
        return s
    }
}
