public import Health
public import Logging

/// The prober's state as a value: every check with its state machine, schedule and results,
/// and every endpoint's verdict. Driven by `Prober` (its timers, its probes, its lock) through
/// three events — configured, due, completed — with the time and the jitter passed in; each
/// returns the actions the driver carries out. No clock, no randomness, no I/O: unit-tested alone.
package struct ProbeSchedule: Sendable {
    /// One check of one endpoint.
    package struct Check: Sendable {
        package let endpoint: Int
        package let spec: CheckSpec
        package var state: CheckState
        package var rtt = RTTAverage()
        /// The best RTT of the recent past: follows a lower sample at once, a higher one by 1% per sample.
        package var floor: Double? = nil
        package var lastRTT: Double? = nil
        package var last: ProbeResult? = nil
        package var lastAt: Double? = nil
        package var failures: [String: Int] = [:]
        package var runs = 0
        /// When the check is due (on its fixed schedule), and when the current run was to start
        /// (due plus its jitter).
        package var due: Double = 0
        package var fireAt: Double = 0
        package var inFlight = false
        package var queued = false
        var heldLogged = false

        init(endpoint: Int, spec: CheckSpec, state: CheckState) {
            self.endpoint = endpoint
            self.spec = spec
            self.state = state
        }
    }

    package struct Endpoint: Sendable {
        package var name: String
        package var region: String
        package var mode: CheckMode
        /// Indices into `checks`.
        package var checks: [Int] = []
        /// The verdict last reported.
        package var reported: EndpointObservation
    }

    package enum Action: Sendable, Equatable {
        /// Call `due(check)` at this monotonic time.
        case arm(check: Int, at: Double)
        /// Run the check's probe now; its result goes to `completed`.
        case launch(check: Int)
        /// Endpoint verdicts that changed.
        case report([EndpointObservation])
        /// Every check that was new at the last `configure` has a result.
        case firstRoundDone
        case log(Logger.Level, String, endpoint: String, check: String?, reason: String)
    }

    package private(set) var checks: [Check] = []
    package private(set) var endpoints: [Endpoint] = []
    /// Checks due while `concurrency` were in flight, in the order they became due.
    package private(set) var waiting: [Int] = []
    package private(set) var inFlight = 0
    package var concurrency = 64
    /// New checks still without a first result.
    package private(set) var firstRoundLeft = 0
    /// Runs started; those that started more than a quarter of their interval late; the largest
    /// lag ever, and the lags of the last minute.
    package private(set) var runs = 0
    package private(set) var late = 0
    package private(set) var maxLag = 0.0
    package private(set) var lagWindow: [(at: Double, lag: Double)] = []

    package init() {}

    /// A check carries its state over a reload when its endpoint and every setting are unchanged.
    struct CheckKey: Hashable {
        var endpoint: String
        var spec: CheckSpec
    }

    /// (Re)configures: checks that exist by (endpoint, spec) keep their state, results and due
    /// time; new ones are due at once. `resume` seeds new checks and endpoints from persisted health.
    /// `jitter` gives a number in 0..<1 for each check armed.
    package mutating func configure(
        topology: HealthTopology, concurrency: Int,
        resume: [String: (up: Bool, reason: String)] = [:], now: Double,
        jitter: () -> Double
    ) -> [Action] {
        self.concurrency = concurrency
        var kept: [CheckKey: Check] = [:]
        for c in checks { kept[CheckKey(endpoint: endpoints[c.endpoint].name, spec: c.spec)] = c }
        let old = Dictionary(endpoints.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var newChecks: [Check] = []
        var newEndpoints: [Endpoint] = []
        var fresh = Set<Int>()
        for (i, e) in topology.endpoints.enumerated() {
            let before = old[e.name]
            var entry = Endpoint(
                name: e.name, region: topology.regionName(ofEndpoint: i), mode: e.checkMode,
                reported: before?.reported ?? EndpointObservation(endpoint: e.name, up: nil, reason: "not checked yet"))
            for spec in e.checks {
                entry.checks.append(newChecks.count)
                if let c = kept.removeValue(forKey: CheckKey(endpoint: e.name, spec: spec)) {
                    var copy = Check(endpoint: i, spec: spec, state: c.state)
                    (copy.rtt, copy.floor, copy.lastRTT, copy.last, copy.lastAt) = (
                        c.rtt, c.floor, c.lastRTT, c.last, c.lastAt
                    )
                    (copy.failures, copy.runs, copy.due) = (c.failures, c.runs, c.due)
                    newChecks.append(copy)
                } else {
                    var state = CheckState(policy: spec.policy)
                    if let r = resume[e.name] {
                        state = CheckState(policy: spec.policy, resumed: r.up, reason: r.reason)
                    }
                    fresh.insert(newChecks.count)
                    newChecks.append(Check(endpoint: i, spec: spec, state: state))
                }
            }
            if let r = resume[e.name], before == nil {
                entry.reported = EndpointObservation(endpoint: e.name, up: r.up, reason: r.reason + " (resumed)")
            }
            newEndpoints.append(entry)
        }
        checks = newChecks
        endpoints = newEndpoints
        waiting = []
        inFlight = 0
        firstRoundLeft = fresh.count
        var actions: [Action] = []
        for i in checks.indices {
            checks[i].due = fresh.contains(i) ? now : max(checks[i].due, now)
            actions.append(arm(i, jitter: jitter()))
        }
        // Endpoints that lost their checks forget what the checks said.
        let changes = endpoints.indices.compactMap { verdictChange($0, log: &actions) }
        if !changes.isEmpty { actions.append(.report(changes)) }
        return actions
    }

    /// The check's timer fired: it runs now, or waits for a slot.
    package mutating func due(_ i: Int, now: Double) -> [Action] {
        guard checks.indices.contains(i), !checks[i].inFlight, !checks[i].queued else { return [] }
        if inFlight >= concurrency {
            checks[i].queued = true
            waiting.append(i)
            return []
        }
        return [launch(i, now: now)]
    }

    /// A probe finished: feeds the check's state machine, arms its next run, starts waiting checks.
    package mutating func completed(_ i: Int, result: ProbeResult, now: Double, jitter: () -> Double) -> [Action] {
        guard checks.indices.contains(i), checks[i].inFlight else { return [] }
        var actions: [Action] = []
        inFlight -= 1
        var c = checks[i]
        c.inFlight = false
        let first = c.runs == 0 && c.last == nil
        c.runs += 1
        c.last = result
        c.lastAt = now
        switch result.outcome {
        case .success(let rtt):
            c.rtt.add(rtt)
            c.lastRTT = rtt
            c.floor = c.floor.map { rtt < $0 ? rtt : $0 + 0.01 * (rtt - $0) } ?? rtt
        case .failure, .local:
            c.failures[result.kind, default: 0] += 1
        }
        let name = endpoints[c.endpoint].name
        let target = c.spec.target
        for a in c.state.record(result.outcome, now: now) {
            switch a {
            case .wentUp(let reason):
                c.heldLogged = false
                actions.append(
                    .log(
                        .notice, "check \(target) of \(name): up (\(reason))", endpoint: name, check: target,
                        reason: reason))
            case .wentDown(let reason):
                actions.append(
                    .log(
                        .warning, "check \(target) of \(name): down (\(reason))", endpoint: name, check: target,
                        reason: reason))
            case .heldDown(let until, let penalty):
                guard !c.heldLogged else { continue }
                c.heldLogged = true
                let text =
                    "check \(target) of \(name): passing but held down by flap damping (penalty \(Int(penalty)), at most \(Int(until - now)) s more)"
                actions.append(.log(.warning, text, endpoint: name, check: target, reason: "flap damping"))
            }
        }
        // Next run: on the fixed schedule; a check that fell behind starts again from now.
        c.due = max(c.due + c.spec.interval, now)
        checks[i] = c
        if let change = verdictChange(c.endpoint, log: &actions) { actions.append(.report([change])) }
        if first && firstRoundLeft > 0 {
            firstRoundLeft -= 1
            if firstRoundLeft == 0 { actions.append(.firstRoundDone) }
        }
        actions.append(arm(i, jitter: jitter()))
        while inFlight < concurrency, !waiting.isEmpty {
            let j = waiting.removeFirst()
            checks[j].queued = false
            actions.append(launch(j, now: now))
        }
        return actions
    }

    /// Forgets lags older than a minute.
    package mutating func trimLags(now: Double) {
        lagWindow.removeAll { now - $0.at > 60 }
    }

    /// The check's next start: its due time plus up to `jitter × interval` (`r` in 0..<1).
    mutating func arm(_ i: Int, jitter r: Double) -> Action {
        let spec = checks[i].spec
        checks[i].fireAt = checks[i].due + (spec.jitter > 0 ? r * spec.jitter * spec.interval : 0)
        return .arm(check: i, at: checks[i].fireAt)
    }

    mutating func launch(_ i: Int, now: Double) -> Action {
        let lag = max(0, now - checks[i].fireAt)
        runs += 1
        if lag > checks[i].spec.interval / 4 { late += 1 }
        maxLag = max(maxLag, lag)
        lagWindow.append((now, lag))
        checks[i].inFlight = true
        inFlight += 1
        return .launch(check: i)
    }

    /// The endpoint's verdict from its checks; the change to report, if any. Only up/down
    /// transitions are reported (and logged); reasons while down refresh quietly.
    mutating func verdictChange(_ e: Int, log actions: inout [Action]) -> EndpointObservation? {
        let entry = endpoints[e]
        let states = entry.checks.map { i -> (up: Bool?, reason: String) in
            let s = checks[i].state
            return (s.up, s.up == nil ? "not checked yet" : "\(checks[i].spec.target): \(s.lastReason)")
        }
        let v = EndpointVerdict.combine(mode: entry.mode, states: states)
        let obs = EndpointObservation(endpoint: entry.name, up: v.up, reason: v.reason)
        let before = entry.reported
        guard obs.up != before.up || (obs.up == false && obs.reason != before.reason) else { return nil }
        endpoints[e].reported = obs
        if obs.up != before.up {
            let state = obs.up.map { $0 ? "up" : "down" } ?? "not checked"
            actions.append(
                .log(
                    .notice, "endpoint \(entry.name): \(state) (\(obs.reason))", endpoint: entry.name, check: nil,
                    reason: obs.reason))
        }
        return obs
    }

    /// Per region, in milliseconds: the mean RTT average of its checks, and the mean excess of the
    /// passing ones over their recent best (nil while none passes).
    package func regionRTT() -> [String: (rtt: Double, extra: Double?)] {
        var rtt: [String: (sum: Double, n: Double)] = [:]
        var extra: [String: (sum: Double, n: Double)] = [:]
        for c in checks {
            guard let avg = c.rtt.value else { continue }
            let r = endpoints[c.endpoint].region
            rtt[r, default: (0, 0)].sum += avg * 1000
            rtt[r, default: (0, 0)].n += 1
            guard case .success? = c.last?.outcome, let floor = c.floor else { continue }
            extra[r, default: (0, 0)].sum += max(0, avg - floor) * 1000
            extra[r, default: (0, 0)].n += 1
        }
        return rtt.reduce(into: [:]) { out, r in
            out[r.key] = (r.value.sum / r.value.n, extra[r.key].map { ($0.sum / $0.n).rounded() })
        }
    }
}
