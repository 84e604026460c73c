import CLodestarSys
import Dispatch
import Foundation
import Logging
import NIOCore
import NIOPosix
import Health
import Settings

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

    /// (Re)configures from the health topology: checks that exist by (endpoint, spec) keep their state; new ones
    /// run at once. `resume` seeds endpoints from persisted health (cold start from disk).
    package func configure(topology: HealthTopology, settings: ProberSettings, resume: [String: (up: Bool, reason: String)] = [:]) {
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
        for (i, e) in topology.endpoints.enumerated() {
            let region = topology.regionName(ofEndpoint: i)
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
}
