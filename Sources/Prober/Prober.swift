import CLodestarSys
import Dispatch
import Foundation
package import Health
package import Logging
import NIOCore
import NIOPosix
package import Settings

/// Runs every endpoint's checks on a schedule, on its own event-loop thread (niced, so probing
/// never takes CPU from the DNS listeners), and reports endpoint verdicts and live RTT.
///
/// The decisions are `ProbeSchedule`'s; this driver owns the clock, the jitter, the timers and
/// the probes, and carries out the schedule's actions. Everything mutable is under `lock`.
package final class Prober: @unchecked Sendable {
    let logger: Logger
    let group: MultiThreadedEventLoopGroup
    let loop: EventLoop
    let runner: ProbeRunner
    let lock = NSLock()
    let onChange: @Sendable ([EndpointObservation]) -> Void
    let onRTT: @Sendable ([String: Double]) -> Void

    var schedule = ProbeSchedule()
    /// Per check, its armed timer.
    var timers: [Scheduled<Void>?] = []
    /// Bumped by every `configure`: timers and probes of an earlier one are ignored.
    var generation = 0
    var pending: [EndpointObservation] = []
    var flushScheduled = false
    var lastRTTSent: [String: Double] = [:]
    var firstRoundDone: DispatchSemaphore? = nil
    var ticker: RepeatedTask? = nil
    var stopped = false

    package init(
        logger: Logger, onChange: @escaping @Sendable ([EndpointObservation]) -> Void,
        onRTT: @escaping @Sendable ([String: Double]) -> Void
    ) {
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
    static func jitter() -> Double { Double.random(in: 0..<1) }

    /// (Re)configures from the health topology: checks that exist by (endpoint, spec) keep their
    /// state; new ones run at once. `resume` seeds endpoints from persisted health (cold start from disk).
    package func configure(
        topology: HealthTopology, settings: ProberSettings, resume: [String: (up: Bool, reason: String)] = [:]
    ) {
        let changes = lock.withLock { () -> [EndpointObservation] in
            for t in timers { t?.cancel() }
            generation += 1
            let actions = schedule.configure(
                topology: topology, concurrency: settings.concurrency, resume: resume,
                now: Self.now(), jitter: Self.jitter)
            timers = Array(repeating: nil, count: schedule.checks.count)
            return perform(actions)
        }
        if !changes.isEmpty { onChange(changes) }
    }

    /// Carries out the schedule's actions (under `lock`); returns the verdicts to report.
    func perform(_ actions: [ProbeSchedule.Action]) -> [EndpointObservation] {
        let gen = generation
        var reports: [EndpointObservation] = []
        for a in actions {
            switch a {
            case .arm(let i, let at):
                let delay = max(0, at - Self.now())
                timers[i] = loop.scheduleTask(in: .nanoseconds(Int64(delay * 1e9))) { [weak self] in
                    self?.fire(i, generation: gen)
                }
            case .launch(let i):
                runner.run(schedule.checks[i].spec).whenSuccess { [weak self] result in
                    self?.completed(i, generation: gen, result: result)
                }
            case .report(let changes):
                reports += changes
            case .firstRoundDone:
                firstRoundDone?.signal()
            case .log(let level, let text, let endpoint, let check, let reason):
                var metadata: Logger.Metadata = ["endpoint": "\(endpoint)", "reason": "\(reason)"]
                if let check { metadata["check"] = "\(check)" }
                logger.log(level: level, "\(text)", metadata: metadata)
            }
        }
        return reports
    }

    func fire(_ i: Int, generation gen: Int) {
        lock.withLock {
            guard gen == generation, !stopped else { return }
            _ = perform(schedule.due(i, now: Self.now()))
        }
    }

    func completed(_ i: Int, generation gen: Int, result: ProbeResult) {
        lock.withLock {
            guard gen == generation, !stopped else { return }
            queue(perform(schedule.completed(i, result: result, now: Self.now(), jitter: Self.jitter)))
        }
    }

    /// Coalesces changes made in one turn of the loop into one report (under `lock`).
    func queue(_ changes: [EndpointObservation]) {
        guard !changes.isEmpty else { return }
        pending += changes
        guard !flushScheduled else { return }
        flushScheduled = true
        loop.execute { [weak self] in self?.flushPending() }
    }

    /// Reports the queued changes; runs on the loop.
    func flushPending() {
        let batch = lock.withLock { () -> [EndpointObservation] in
            defer {
                pending = []
                flushScheduled = false
            }
            return pending
        }
        if !batch.isEmpty { onChange(batch) }
    }

    /// Once a second: the lag window, and live RTT per region when it moved by a millisecond.
    func tick() {
        let rtt = lock.withLock { () -> [String: Double]? in
            guard !stopped else { return nil }
            schedule.trimLags(now: Self.now())
            let extra = schedule.regionRTT().compactMapValues(\.extra)
            guard
                extra.keys != lastRTTSent.keys
                    || extra.contains(where: { abs($0.value - (lastRTTSent[$0.key] ?? 0)) >= 1 })
            else {
                return nil
            }
            lastRTTSent = extra
            return extra
        }
        if let rtt { onRTT(rtt) }
    }

    /// Blocks until every new check has a first result or `timeout` passes; returns how many are
    /// still without one.
    package func waitForFirstRound(timeout: Double) -> Int {
        let sem = lock.withLock { () -> DispatchSemaphore? in
            guard schedule.firstRoundLeft > 0 else { return nil }
            firstRoundDone = DispatchSemaphore(value: 0)
            return firstRoundDone
        }
        guard let sem else { return 0 }
        _ = sem.wait(timeout: .now() + timeout)
        let left = lock.withLock { () -> Int in
            firstRoundDone = nil
            return schedule.firstRoundLeft
        }
        // Deliver what the round found before returning: the caller is about to answer queries.
        // Flushes run on the loop in order, so this one runs after any already scheduled.
        try? loop.submit { self.flushPending() }.wait()
        return left
    }

    package func stop() {
        lock.withLock {
            stopped = true
            for t in timers { t?.cancel() }
        }
        ticker?.cancel()
        try? group.syncShutdownGracefully()
    }
}
