import CLodestarSys
import Foundation
import Health
package import Logging
import NIOCore
import NIOPosix
import Prober
package import Settings

/// Announces and withdraws the anycast prefixes through BIRD's control socket according to the
/// self-check and the pools' health. Runs on its own thread; the self-check runs on its own event loop.
///
/// BIRD cannot wedge the rest: the decision state and the socket belong to the controller thread
/// alone. Other threads meet it only under `lock`, which is never held across socket I/O: they
/// leave requests (overrides, stop) and read the status it publishes after each step. So
/// `/metrics`, `/v1/anycast` and SIGTERM answer at once however long BIRD takes (each BIRD call
/// is bounded by the client's timeout, connect included).
package final class AnycastController: @unchecked Sendable {
    let settings: AnycastSettings
    let logger: Logger
    /// Pool and region names that are up now (from the health the queries use).
    let healthyPools: @Sendable () -> (pools: Set<String>, regions: Set<String>)
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let runner: ProbeRunner
    let bird: BirdClient
    /// Guards what other threads share with the controller thread: `requestedOverrides`,
    /// `stopRequested`, `published`, `finished`. Never held across BIRD I/O.
    let lock = NSLock()
    let wake = NSCondition()
    var requestedOverrides: [String: Bool] = [:]
    var stopRequested = false
    /// The status as of the controller's last step, and when (monotonic seconds).
    var published: AnycastStatus? = nil
    var publishedAt = 0.0
    /// How long SIGTERM waits for the controller thread's last withdrawal before leaving it.
    static let stopWait = 3.0

    var check: CheckState
    var routes: [RouteHealth]
    var overrides: [String: Bool] = [:]
    var birdState: [String: String] = [:]
    var exported: [String: Bool] = [:]
    var otherPaths: [String: Int] = [:]
    /// What BIRD was last told per protocol, and whether its loaded config has the drain flag.
    var applied: [String: RouteDesire] = [:]
    var drainLoaded: Set<String> = []
    /// Protocols whose state in BIRD was looked at before the first decision.
    var adopted: Set<String> = []
    /// Per protocol: round trip and code of the last enable/disable.
    var prefixCommand: [String: (seconds: Double, code: Int)] = [:]
    var connected = false
    var birdError: String? = nil
    var lastCommand: String? = nil
    var lastCommandSeconds: Double? = nil
    var lastCommandCode: Int? = nil
    var commands = 0, commandErrors = 0
    var nextReassert = 0.0
    var backoff = 1.0
    var nextConnect = 0.0
    var stopping = false
    var finished = false
    var thread: Thread? = nil

    package init(
        settings: AnycastSettings, logger: Logger,
        healthyPools: @escaping @Sendable () -> (pools: Set<String>, regions: Set<String>)
    ) {
        self.settings = settings
        self.logger = logger
        self.healthyPools = healthyPools
        runner = ProbeRunner(loop: group.next())
        bird = BirdClient(path: settings.socket, timeout: 2)
        // Starts down: announcing needs `rise` passing self-checks, not just the first.
        check = CheckState(policy: settings.selfCheck.policy, resumed: false, reason: "not passed yet")
        routes = settings.prefixes.map { RouteHealth(minOtherPaths: $0.minOtherPaths, drainTime: settings.drainTime) }
    }

    static func now() -> Double { lodestar_monotonic() }

    /// Starts the loop: the first self-check runs at once; nothing is announced before it passes
    /// `rise` times.
    package func start() {
        // Before the first check: the durable mirror says withdrawn, whatever a previous run left.
        writeInclude()
        publish()
        let t = Thread { [self] in run() }
        t.name = "lodestar-anycast"
        thread = t
        t.start()
    }

    /// The controller thread: a step per self-check interval until stopped, then the withdrawal.
    func run() {
        while true {
            let started = Self.now()
            if takeRequests() { break }
            tick()
            publish()
            let next = started + settings.selfCheck.interval
            wake.withLock {
                while Self.now() < next, !lock.withLock({ stopRequested }) {
                    _ = wake.wait(until: Date().addingTimeInterval(max(0.001, next - Self.now())))
                }
            }
        }
        finalWithdrawal()
        publish()
        lock.withLock { finished = true }
        wake.withLock { wake.broadcast() }
    }

    /// Takes what other threads asked for; true when asked to stop.
    func takeRequests() -> Bool {
        lock.withLock {
            overrides = requestedOverrides
            stopping = stopRequested
            return stopping
        }
    }

    /// Makes the current state what `status()` returns.
    func publish() {
        let s = makeStatus(now: Self.now())
        lock.withLock {
            published = s
            publishedAt = Self.now()
        }
    }

    /// One round: self-check, decide per prefix, tell BIRD what changed, re-assert when due.
    func tick() {
        let result =
            (try? runner.run(settings.selfCheck).wait()) ?? ProbeRunner.failure("error", "self-check did not run")
        let health = healthyPools()
        let now = Self.now()
        for a in check.record(result.outcome, now: now) {
            switch a {
            case .wentUp(let r):
                logger.notice(
                    "anycast self-check \(settings.selfCheck.target): up (\(r))",
                    metadata: ["check": "\(settings.selfCheck.target)", "reason": "\(r)"])
            case .wentDown(let r):
                logger.warning(
                    "anycast self-check \(settings.selfCheck.target): down (\(r))",
                    metadata: ["check": "\(settings.selfCheck.target)", "reason": "\(r)"])
            case .heldDown(let until, _):
                logger.warning(
                    "anycast self-check passes but is held down by flap damping for up to \(Int(until - now)) s")
            }
        }
        ensureConnected(now: now)
        var changed = false
        if bird.isConnected {
            for (i, p) in settings.prefixes.enumerated() where !adopted.contains(p.proto) && routes[i].lastChange == nil
            {
                adopted.insert(p.proto)
                refresh(p)
                if birdState[p.proto] == "up" {
                    routes[i].adoptAnnounced(now: now)
                    applied[p.proto] = .announce
                    changed = true
                    logger.notice(
                        "anycast \(p.prefix) (\(p.proto)): already announced by BIRD; kept until lodestar decides otherwise",
                        metadata: ["prefix": "\(p.prefix)", "protocol": "\(p.proto)"])
                }
            }
        }
        for (i, p) in settings.prefixes.enumerated() {
            let (healthy, why) = wanted(p, health: health, now: now)
            var paths: Int? = nil
            if routes[i].needsPathCount(healthy: healthy) {
                paths = countOtherPaths(p)
                otherPaths[p.proto] = paths
            }
            let alarmBefore = routes[i].alarm
            if routes[i].evaluate(healthy: healthy, why: why, otherPaths: paths, now: now) {
                changed = true
                logger.notice(
                    "anycast \(p.prefix) (\(p.proto)): \(routes[i].desired.rawValue) (\(routes[i].reason))",
                    metadata: ["prefix": "\(p.prefix)", "protocol": "\(p.proto)", "reason": "\(routes[i].reason)"])
            }
            if let a = routes[i].alarm, a != alarmBefore {
                logger.error(
                    "anycast \(p.prefix) (\(p.proto)): ALARM: \(a)",
                    metadata: ["prefix": "\(p.prefix)", "protocol": "\(p.proto)", "reason": "\(a)"])
            }
        }
        if changed { writeInclude() }
        apply(now: now)
    }

    /// Whether the prefix should be announced, and why not.
    func wanted(_ p: AnycastSettings.Prefix, health: (pools: Set<String>, regions: Set<String>), now: Double) -> (
        Bool, String
    ) {
        if stopping { return (false, "lodestar is stopping") }
        if overrides[p.proto] == true { return (false, "withdrawn by the admin") }
        guard check.up == true else {
            return (false, check.up == nil ? "self-check not passed yet" : "self-check failed: \(check.lastReason)")
        }
        if check.isSuppressed(at: now) { return (false, "self-check held down by flap damping") }
        for pool in p.requirePools where !health.pools.contains(pool) { return (false, "pool \(pool) is down") }
        for r in p.requireRegions where !health.regions.contains(r) { return (false, "region \(r) is down") }
        return (true, "self-check passes")
    }
}
