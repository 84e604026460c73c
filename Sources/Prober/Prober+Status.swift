import CLodestarSys
import Dispatch
import Foundation
import Logging
import NIOCore
import NIOPosix
import Health

/// The status the admin API and metrics read.
extension Prober {
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
                        failures: t.failures, certDaysLeft: t.last?.certDaysLeft, certExpiry: t.last?.certExpiry, secondsSinceLast: t.lastAt.map { now - $0 })
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
