import CLodestarSys
import Engine
import Foundation
import Steering

/// Samples of the per-endpoint answer counters, for "share of recent answers".
final class ShareWindow: @unchecked Sendable {
    let lock = NSLock()
    var samples: [(time: Double, counts: [UInt64])] = []
    /// The counters sampled (one set per compiled table). Held strongly: a weak reference would give
    /// the object a side table and send every retain and release of it on the query path through the
    /// runtime's slow path (seen in callgrind: ~250 instructions per query on the table).
    var counters: AnswerCounters?

    func sample(_ rt: SteeringRuntime?) {
        guard let rt else { return }
        lock.withLock {
            if counters !== rt.counters {
                samples.removeAll()
                counters = rt.counters
            }
            samples.append(
                (lodestar_monotonic(), (0..<rt.table.model.endpoints.count).map { rt.counters.endpoint($0) }))
            if samples.count > 13 { samples.removeFirst(samples.count - 13) }
        }
    }

    /// Answers per endpoint since the oldest sample (up to a minute ago), and the window's length.
    func recent(_ rt: SteeringRuntime) -> ([UInt64], Double) {
        return lock.withLock {
            let now = (0..<rt.table.model.endpoints.count).map { rt.counters.endpoint($0) }
            guard counters === rt.counters, let first = samples.first, first.counts.count == now.count else {
                return (now, 0)
            }
            return (zip(now, first.counts).map { $0 &- $1 }, lodestar_monotonic() - first.time)
        }
    }
}
