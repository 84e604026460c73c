import CLodestarSys
import Foundation
import Logging
import NIOCore
import NIOPosix
import Prober
import Steering

/// What operators do: maintenance overrides, the withdrawal at shutdown, the status.
extension AnycastController {
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
