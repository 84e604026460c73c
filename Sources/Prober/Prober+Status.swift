import Foundation
import Health

/// The status the admin API and metrics read.
extension Prober {
    package func status() -> ProberStatus {
        lock.withLock {
            let now = Self.now()
            var s = ProberStatus()
            s.checks = schedule.checks.map { c in
                CheckStatus(
                    endpoint: schedule.endpoints[c.endpoint].name, target: c.spec.target, kind: c.spec.kind.rawValue,
                    up: c.state.up, reason: c.state.lastReason, rttMs: c.rtt.value.map { $0 * 1000 },
                    lastRttMs: c.lastRTT.map { $0 * 1000 }, penalty: c.state.penalty(at: now),
                    suppressed: c.state.isSuppressed(at: now), flaps: c.state.flaps, runs: c.runs,
                    failures: c.failures, certDaysLeft: c.last?.certDaysLeft, certExpiry: c.last?.certExpiry,
                    secondsSinceLast: c.lastAt.map { now - $0 })
            }
            s.endpoints = schedule.endpoints.map(\.reported)
            s.regionRTTMs = schedule.regionRTT().mapValues { ($0.rtt, $0.extra ?? 0) }
            s.runs = schedule.runs
            s.late = schedule.late
            s.maxLag = schedule.maxLag
            s.maxLagRecent = schedule.lagWindow.map(\.lag).max() ?? 0
            s.inFlight = schedule.inFlight
            return s
        }
    }
}
