import Foundation
import Health
import Logging
import NIOCore
import Settings

/// What operators do: maintenance overrides, the withdrawal at shutdown, the status.
extension AnycastController {
    /// Withdraws (true) or returns to automatic (nil) for maintenance; false if no such protocol.
    /// Taken by the controller thread at its next step (woken now).
    package func setOverride(proto: String, withdraw: Bool?) -> Bool {
        guard settings.prefixes.contains(where: { $0.proto == proto }) else { return false }
        lock.withLock { requestedOverrides[proto] = withdraw }
        logger.notice("anycast: \(proto) \(withdraw == true ? "withdrawn by the admin" : "back to automatic")")
        wake.withLock { wake.broadcast() }
        return true
    }

    package var isRunning: Bool {
        lock.withLock { !stopRequested }
    }

    /// Withdraws every prefix (no guard: this node is about to stop answering) and stops the loop.
    /// The controller thread makes the withdrawal; this waits for it at most `stopWait` seconds, so
    /// a hung BIRD cannot hold the shutdown: the include file then says withdrawn, and BIRD reads
    /// it on its next `configure` or restart.
    package func withdrawAndStop() {
        let (already, started) = lock.withLock { () -> (Bool, Bool) in
            defer { stopRequested = true }
            return (stopRequested, thread != nil)
        }
        if already { return }
        guard started else {
            // Never started: no thread owns the state; withdraw from here.
            stopping = true
            finalWithdrawal()
            try? group.syncShutdownGracefully()
            return
        }
        wake.withLock { wake.broadcast() }
        let deadline = Self.now() + Self.stopWait
        var done = false
        while Self.now() < deadline {
            done = lock.withLock { finished || thread == nil }
            if done { break }
            usleep(10_000)
        }
        if !done {
            writeInclude(allWithdrawn: true)
            logger.error(
                "anycast: BIRD did not take the withdrawal within \(Self.stopWait) s; \(settings.includeFile) says withdrawn"
            )
        }
        try? group.syncShutdownGracefully()
    }

    /// On the controller thread, last: every prefix withdrawn, in the include file and in BIRD.
    func finalWithdrawal() {
        let now = Self.now()
        for (i, p) in settings.prefixes.enumerated() {
            if routes[i].evaluate(
                healthy: false, why: "lodestar is stopping", otherPaths: nil, stopping: true, now: now)
            {
                logger.notice("anycast \(p.prefix) (\(p.proto)): withdraw (lodestar is stopping)")
            }
        }
        writeInclude()
        ensureConnected(now: now + 1e9)
        apply(now: now)
        bird.close()
    }

    /// The status as of the controller's last step (never waits for BIRD); ages brought up to now.
    package func status() -> AnycastStatus {
        var (s, age) = lock.withLock { (published ?? makeStatus(now: Self.now()), Self.now() - publishedAt) }
        for i in s.prefixes.indices {
            s.prefixes[i].secondsSinceChange = s.prefixes[i].secondsSinceChange.map { $0 + age }
        }
        return s
    }

    /// The status from the controller's state: on its thread, or before it starts.
    func makeStatus(now: Double) -> AnycastStatus {
        AnycastStatus(
            socket: settings.socket, connected: bird.isConnected, birdError: birdError,
            birdVersion: bird.greeting.isEmpty ? nil : bird.greeting, selfCheckUp: check.up,
            selfCheckReason: check.lastReason,
            lastCommand: lastCommand, lastCommandSeconds: lastCommandSeconds, lastCommandCode: lastCommandCode,
            commands: commands, commandErrors: commandErrors,
            prefixes: settings.prefixes.enumerated().map { (i, p) in
                PrefixStatus(
                    prefix: p.prefix, proto: p.proto, desired: routes[i].desired.rawValue, reason: routes[i].reason,
                    alarm: routes[i].alarm, birdState: birdState[p.proto], exported: exported[p.proto],
                    otherPaths: otherPaths[p.proto], withdrawals: routes[i].withdrawals,
                    secondsSinceChange: routes[i].lastChange.map { now - $0 },
                    lastCommandSeconds: prefixCommand[p.proto]?.seconds, lastCommandCode: prefixCommand[p.proto]?.code,
                    override: overrides[p.proto] == true ? "withdraw" : nil)
            })
    }
}
