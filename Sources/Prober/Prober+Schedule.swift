import CLodestarSys
import Dispatch
import Foundation
import Logging
import NIOCore
import NIOPosix
import Health

/// Scheduling and results, under `lock`: when each check runs, what its result changes.
extension Prober {
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
        case .failure, .local:
            t.failures[result.kind, default: 0] += 1
        }
        for a in t.state.record(result.outcome, now: now) {
            switch a {
            case .wentUp(let reason):
                t.heldLogged = false
                logger.notice("check \(t.spec.target) of \(name): up (\(reason))",
                              metadata: ["endpoint": "\(name)", "check": "\(t.spec.target)", "reason": "\(reason)"])
            case .wentDown(let reason):
                logger.warning("check \(t.spec.target) of \(name): down (\(reason))",
                               metadata: ["endpoint": "\(name)", "check": "\(t.spec.target)", "reason": "\(reason)"])
            case .heldDown(let until, let penalty):
                if !t.heldLogged {
                    t.heldLogged = true
                    logger.warning("check \(t.spec.target) of \(name): passing but held down by flap damping (penalty \(Int(penalty)), at most \(Int(until - now)) s more)",
                                   metadata: ["endpoint": "\(name)", "check": "\(t.spec.target)", "reason": "flap damping"])
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
            logger.notice("endpoint \(entry.name): \(state) (\(obs.reason))", metadata: ["endpoint": "\(entry.name)", "reason": "\(obs.reason)"])
        }
        return obs
    }
}
