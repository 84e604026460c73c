import CLodestarSys
import Foundation
import Logging
import NIOCore
import NIOPosix
import Prober
import Steering

/// The `anycast:` config.
package struct AnycastSettings: Sendable, Equatable {
    package struct Prefix: Sendable, Equatable {
        /// `198.51.100.53/32`, as written (validated by the config parser).
        package var prefix: String
        /// The BIRD `static` protocol that announces it.
        package var proto: String
        /// Pools and regions that must be up for the prefix to stay announced.
        package var requirePools: [String] = []
        package var requireRegions: [String] = []
        /// Keep announcing unless at least this many paths from other POPs are visible in BIRD.
        package var minOtherPaths = 0
        /// BIRD protocol (the BGP session) whose exports are reported (`show route export`).
        package var exportProtocol: String? = nil

        package init(prefix: String, proto: String) {
            self.prefix = prefix
            self.proto = proto
        }
    }

    package var socket = "/run/bird/bird.ctl"
    /// The durable mirror: `define LODESTAR_<PROTO>_DOWN/_DRAIN` for BIRD's config to include.
    package var includeFile: String
    package var selfCheck: CheckSpec
    /// Seconds between re-assertions of the desired state (and after every reconnect).
    package var reassert = 30.0
    /// Announce with GRACEFUL_SHUTDOWN this long before withdrawing (0: withdraw at once).
    package var drainTime = 0.0
    /// On SIGTERM: withdraw, keep answering this long, then stop.
    package var shutdownDelay = 5.0
    package var prefixes: [Prefix] = []

    package init(includeFile: String, selfCheck: CheckSpec) {
        self.includeFile = includeFile
        self.selfCheck = selfCheck
    }
}

/// What the admin API and /metrics show per prefix.
package struct PrefixStatus: Sendable, Encodable {
    package var prefix: String
    package var proto: String
    package var desired: String
    package var reason: String
    package var alarm: String?
    /// BIRD's state of the static protocol (`up`, `down`, …), nil when not known.
    package var birdState: String?
    /// Whether `show route export` lists the prefix for the export protocol (nil: not configured or unknown).
    package var exported: Bool?
    package var otherPaths: Int?
    package var withdrawals: Int
    package var secondsSinceChange: Double?
    /// The last `enable`/`disable` for this prefix: round trip and BIRD's final code.
    package var lastCommandSeconds: Double?
    package var lastCommandCode: Int?
    package var override: String?
}

package struct AnycastStatus: Sendable, Encodable {
    package var socket: String
    package var connected: Bool
    package var birdError: String?
    package var birdVersion: String?
    package var selfCheckUp: Bool?
    package var selfCheckReason: String
    package var lastCommand: String?
    package var lastCommandSeconds: Double?
    package var lastCommandCode: Int?
    package var commands: Int
    package var commandErrors: Int
    package var prefixes: [PrefixStatus]
}

/// Announces and withdraws the anycast prefixes through BIRD's control socket according to the
/// self-check and the pools' health. Runs on its own thread; the self-check runs on its own event loop.
package final class AnycastController: @unchecked Sendable {
    let settings: AnycastSettings
    let logger: Logger
    /// Pool and region names that are up now (from the health the queries use).
    let healthyPools: @Sendable () -> (pools: Set<String>, regions: Set<String>)
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let runner: ProbeRunner
    let bird: BirdClient
    let lock = NSLock()
    let wake = NSCondition()

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

    package init(settings: AnycastSettings, logger: Logger,
                 healthyPools: @escaping @Sendable () -> (pools: Set<String>, regions: Set<String>)) {
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
        lock.lock()
        writeInclude()
        lock.unlock()
        let t = Thread { [self] in run() }
        t.name = "lodestar-anycast"
        thread = t
        t.start()
    }

    func run() {
        while true {
            let started = Self.now()
            lock.lock()
            let done = stopping
            lock.unlock()
            if done { break }
            tick()
            let next = started + settings.selfCheck.interval
            wake.lock()
            while Self.now() < next {
                lock.lock()
                let s = stopping
                lock.unlock()
                if s { break }
                _ = wake.wait(until: Date().addingTimeInterval(max(0.001, next - Self.now())))
            }
            wake.unlock()
        }
        wake.lock()
        finished = true
        wake.broadcast()
        wake.unlock()
    }

    /// One round: self-check, decide per prefix, tell BIRD what changed, re-assert when due.
    func tick() {
        let result = (try? runner.run(settings.selfCheck).wait()) ?? ProbeRunner.failure("error", "self-check did not run")
        let health = healthyPools()
        lock.lock()
        defer { lock.unlock() }
        let now = Self.now()
        for a in check.record(result.outcome, now: now) {
            switch a {
            case .wentUp(let r): logger.notice("anycast self-check \(settings.selfCheck.target): up (\(r))")
            case .wentDown(let r): logger.warning("anycast self-check \(settings.selfCheck.target): down (\(r))")
            case .heldDown(let until, _): logger.warning("anycast self-check passes but is held down by flap damping for up to \(Int(until - now)) s")
            }
        }
        ensureConnected(now: now)
        var changed = false
        if bird.isConnected {
            for (i, p) in settings.prefixes.enumerated() where !adopted.contains(p.proto) && routes[i].lastChange == nil {
                adopted.insert(p.proto)
                refresh(p)
                if birdState[p.proto] == "up" {
                    routes[i].adoptAnnounced(now: now)
                    applied[p.proto] = .announce
                    changed = true
                    logger.notice("anycast \(p.prefix) (\(p.proto)): already announced by BIRD; kept until lodestar decides otherwise")
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
                logger.notice("anycast \(p.prefix) (\(p.proto)): \(routes[i].desired.rawValue) (\(routes[i].reason))")
            }
            if let a = routes[i].alarm, a != alarmBefore { logger.error("anycast \(p.prefix) (\(p.proto)): ALARM: \(a)") }
        }
        if changed { writeInclude() }
        apply(now: now)
    }

    /// Whether the prefix should be announced, and why not.
    func wanted(_ p: AnycastSettings.Prefix, health: (pools: Set<String>, regions: Set<String>), now: Double) -> (Bool, String) {
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

    // MARK: - BIRD (under `lock`)

    func ensureConnected(now: Double) {
        guard !bird.isConnected else { return }
        guard now >= nextConnect else { return }
        do {
            try bird.connect()
            if !connected || birdError != nil { logger.notice("anycast: connected to BIRD at \(settings.socket) (\(bird.greeting))") }
            connected = true
            birdError = nil
            backoff = 1
            // After (re)connecting, re-assert everything: BIRD may have restarted.
            applied = [:]
            nextReassert = 0
        } catch {
            let text = "\(error)"
            if text != birdError { logger.error("anycast: cannot reach BIRD: \(text); still serving DNS, retrying") }
            birdError = text
            connected = false
            nextConnect = now + backoff
            backoff = min(backoff * 2, 10)
        }
    }

    /// One command, timed and counted; nil when the transport failed.
    func command(_ text: String, expected: Set<Int> = []) -> BirdReply? {
        guard bird.isConnected else { return nil }
        let t0 = Self.now()
        do {
            let r = try bird.send(text)
            commands += 1
            lastCommand = text
            lastCommandSeconds = Self.now() - t0
            lastCommandCode = r.code
            if !r.ok && !expected.contains(r.code) {
                commandErrors += 1
                logger.error("anycast: BIRD answered \(r.code) to \"\(text)\": \(r.text)")
            }
            return r
        } catch {
            commandErrors += 1
            connected = false
            birdError = "\(error)"
            logger.error("anycast: \(error); reconnecting")
            nextConnect = Self.now() + backoff
            return nil
        }
    }

    /// Brings BIRD to the desired states: new decisions at once, all of them when a re-assertion is due.
    func apply(now: Double) {
        guard bird.isConnected else { return }
        let reassert = now >= nextReassert
        if reassert { nextReassert = now + settings.reassert }
        var needConfigure = false
        for (i, p) in settings.prefixes.enumerated() {
            let want = routes[i].desired
            let drainWanted = want == .drain
            if drainWanted != drainLoaded.contains(p.proto) { needConfigure = true }
        }
        if needConfigure {
            // The include file already says what to drain; configure loads it (never `configure soft`,
            // which leaves exported routes alone).
            if let r = command("configure"), r.ok {
                drainLoaded = Set(settings.prefixes.indices.filter { routes[$0].desired == .drain }.map { settings.prefixes[$0].proto })
            }
        }
        for (i, p) in settings.prefixes.enumerated() {
            let want = routes[i].desired
            if reassert || applied[p.proto] != want {
                if reassert { refresh(p) }
                let up = birdState[p.proto].map { $0 == "up" || $0 == "start" }
                var text: String? = nil
                switch want {
                case .announce, .drain:
                    if applied[p.proto] != want || up == false { text = "enable \(p.proto)" }
                case .withdraw:
                    if applied[p.proto] != want || up == true {
                        text = "disable \(p.proto) \"\(BirdNames.message("lodestar: \(routes[i].reason)"))\""
                    }
                }
                if let text, let r = command(text) {
                    prefixCommand[p.proto] = (lastCommandSeconds ?? 0, r.code)
                    if r.ok { applied[p.proto] = want }
                }
                if reassert || applied[p.proto] == want { refresh(p) }
            }
        }
    }

    /// BIRD's view of one prefix: the static protocol's state, and whether it is exported.
    func refresh(_ p: AnycastSettings.Prefix) {
        if let r = command("show protocols \(p.proto)"), r.ok {
            // 1002 row: name proto table state since info
            if let row = r.lines.first(where: { $0.code == 1002 }) {
                let f = row.text.split(separator: " ", omittingEmptySubsequences: true)
                if f.count >= 4, f[0] == p.proto { birdState[p.proto] = String(f[3]) }
            }
        }
        if let e = p.exportProtocol, let r = command("show route export \(e) \(p.prefix)", expected: [8001]) {
            exported[p.proto] = r.ok && r.lines.contains { $0.text.hasPrefix(p.prefix + " ") }
        }
    }

    /// Paths to the prefix in BIRD's table from protocols other than this node's anycast statics.
    func countOtherPaths(_ p: AnycastSettings.Prefix) -> Int? {
        guard let r = command("show route \(p.prefix)", expected: [8001]) else { return nil }
        if r.code == 8001 { return 0 }
        guard r.ok else { return nil }
        let ours = Set(settings.prefixes.map(\.proto))
        var n = 0
        for line in r.lines where line.code == 1007 {
            // " 198.51.100.53/32  unreachable [from_c 2026-… from 127.0.0.4] * (100) [AS65003i]"
            guard let open = line.text.firstIndex(of: "[") else { continue }
            let proto = line.text[line.text.index(after: open)...].split(separator: " ").first.map(String.init) ?? ""
            if !proto.isEmpty && !ours.contains(proto) && !line.text.hasPrefix("Table ") { n += 1 }
        }
        return n
    }

    /// The durable mirror, written atomically: `configure` and BIRD restarts keep what lodestar decided.
    func writeInclude() {
        var text = "# Written by lodestar: the anycast state it wants. Include it in bird.conf, and use\n"
        text += "# `disabled LODESTAR_<PROTO>_DOWN;` in each static protocol (and _DRAIN in the export filter).\n"
        for (i, p) in settings.prefixes.enumerated() {
            let d = routes[i].desired
            let name = "LODESTAR_" + p.proto.uppercased()
            text += "define \(name)_DOWN = \(d == .withdraw ? 1 : 0);\t# \(p.prefix): \(BirdNames.message(routes[i].reason))\n"
            text += "define \(name)_DRAIN = \(d == .drain ? 1 : 0);\n"
        }
        let tmp = settings.includeFile + ".tmp"
        guard FileManager.default.createFile(atPath: tmp, contents: Data(text.utf8)), rename(tmp, settings.includeFile) == 0 else {
            logger.error("anycast: cannot write \(settings.includeFile): \(String(cString: strerror(errno)))")
            return
        }
    }

    // MARK: - Operators

    /// Withdraws (true) or returns to automatic (nil) for maintenance; false if no such protocol.
    package func setOverride(proto: String, withdraw: Bool?) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard settings.prefixes.contains(where: { $0.proto == proto }) else { return false }
        overrides[proto] = withdraw
        logger.notice("anycast: \(proto) \(withdraw == true ? "withdrawn by the admin" : "back to automatic")")
        wake.lock()
        wake.broadcast()
        wake.unlock()
        return true
    }

    package var isRunning: Bool {
        lock.lock()
        defer { lock.unlock() }
        return !stopping
    }

    /// Withdraws every prefix (no guard: this node is about to stop answering) and stops the loop.
    package func withdrawAndStop() {
        lock.lock()
        if stopping { lock.unlock(); return }
        stopping = true
        lock.unlock()
        wake.lock()
        wake.broadcast()
        while !finished && thread != nil {
            _ = wake.wait(until: Date().addingTimeInterval(0.05))
        }
        wake.unlock()
        lock.lock()
        let now = Self.now()
        for (i, p) in settings.prefixes.enumerated() {
            if routes[i].evaluate(healthy: false, why: "lodestar is stopping", otherPaths: nil, stopping: true, now: now) {
                logger.notice("anycast \(p.prefix) (\(p.proto)): withdraw (lodestar is stopping)")
            }
        }
        writeInclude()
        ensureConnected(now: now + 1e9)
        apply(now: now)
        bird.close()
        lock.unlock()
        try? group.syncShutdownGracefully()
    }

    package func status() -> AnycastStatus {
        lock.lock()
        defer { lock.unlock() }
        let now = Self.now()
        return AnycastStatus(
            socket: settings.socket, connected: bird.isConnected, birdError: birdError,
            birdVersion: bird.greeting.isEmpty ? nil : bird.greeting, selfCheckUp: check.up, selfCheckReason: check.lastReason,
            lastCommand: lastCommand, lastCommandSeconds: lastCommandSeconds, lastCommandCode: lastCommandCode,
            commands: commands, commandErrors: commandErrors,
            prefixes: settings.prefixes.enumerated().map { (i, p) in
                PrefixStatus(prefix: p.prefix, proto: p.proto, desired: routes[i].desired.rawValue, reason: routes[i].reason,
                             alarm: routes[i].alarm, birdState: birdState[p.proto], exported: exported[p.proto],
                             otherPaths: otherPaths[p.proto], withdrawals: routes[i].withdrawals,
                             secondsSinceChange: routes[i].lastChange.map { now - $0 },
                             lastCommandSeconds: prefixCommand[p.proto]?.seconds, lastCommandCode: prefixCommand[p.proto]?.code,
                             override: overrides[p.proto] == true ? "withdraw" : nil)
            })
    }
}
