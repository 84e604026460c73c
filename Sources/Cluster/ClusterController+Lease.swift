import CLodestarSys
import Foundation
package import Health
import Logging
import Settings

/// The lease thread: keepalive, this POP's votes and heartbeat, compaction, and re-deciding as
/// votes age; and this POP's verdicts in, decisions out.
extension ClusterController {
    /// The heartbeat: one small key per POP under the lease, whatever the number of endpoints
    /// (votes themselves are written on transitions and after a new lease only).
    func beat() throws {
        let leaseID = lock.withLock { lease }
        guard leaseID != 0 else { return }
        let data = Array(
            try JSONEncoder().encode(
                Beat(
                    at: Date().timeIntervalSince1970, rtt: lock.withLock { ownRTT },
                    id: instance, host: Self.host)))
        try client.put(keys.alive, data, lease: leaseID)
        wrote(keys: 1, octets: data.count + keys.alive.utf8.count)
    }

    /// Writes this POP's votes that changed (or all of them, under a new lease).
    func publish(all: Bool) throws {
        // Taken out of `unpublished` now: a verdict changing while these are written is pending
        // again, not lost when they are done.
        let (leaseID, pending) = lock.withLock { () -> (Int64, [(endpoint: String, vote: Vote)]) in
            guard lease != 0 else { return (0, []) }
            return (lease, book.takeUnpublished(all: all, now: Date().timeIntervalSince1970))
        }
        guard leaseID != 0 else { return }
        let enc = JSONEncoder()
        var done = 0
        do {
            // Up to `voteBatch` votes per transaction (etcd's --max-txn-ops is 128 by default).
            while done < pending.count {
                let batch = lock.withLock { voteBatch }
                let chunk = pending[done..<min(pending.count, done + batch)]
                let items = try chunk.map { (keys.vote($0.endpoint), Array(try enc.encode($0.vote))) }
                do {
                    try client.putMany(items, lease: leaseID)
                } catch let f as EtcdClient.Failure where f.code == .tooManyOperations && batch > 1 {
                    logger.notice(
                        "cluster: etcd takes fewer operations per transaction (\(f)); writing votes one at a time")
                    lock.withLock { voteBatch = 1 }
                    continue
                }
                done += chunk.count
                wrote(keys: items.count, octets: items.reduce(0) { $0 + $1.0.utf8.count + $1.1.count })
            }
        } catch {
            lock.withLock { book.unwritten(pending[done...].map(\.endpoint)) }
            throw error
        }
    }

    /// Counts one request that wrote `keys` keys (`octets` of keys and values, for votes and heartbeats).
    func wrote(keys: Int, octets: Int = 0) {
        lock.withLock {
            writes += keys
            writeRequests += 1
            writeBytes += octets
        }
    }

    func leaseLoop() {
        // Keepalives and writes to an etcd that is away: retried after 0.25 s, doubling to 5 s or
        // a third of the lease, whichever is shorter;
        // the decisions are still made every 0.25 s (the fallback's time must not slip).
        var backoff = 0.25
        var retryAt = 0.0
        while !isStopped {
            pause(0.25)
            if isStopped { break }
            let now = lodestar_monotonic()
            let (id, keepDue, heartbeatDue, pending, online) = lock.withLock {
                (
                    lease, now - lastKeepAlive >= Double(settings.leaseTTL) / 3,
                    now - lastHeartbeat >= settings.heartbeat,
                    !book.unpublished.isEmpty, link.connected
                )
            }
            do {
                guard now >= retryAt else { throw Skipped() }
                if id != 0 && keepDue {
                    if try client.keepAlive(id) {
                        lock.withLock { lastKeepAlive = now }
                        contact()
                    } else {
                        logger.warning(
                            "cluster: the lease on this POP's votes expired; granting a new one and writing them again")
                        lock.withLock { lease = 0 }
                        watch.stop()
                    }
                }
                if id != 0 && online && pending { try publish(all: false) }
                if id != 0 && online && heartbeatDue {
                    lock.withLock { lastHeartbeat = now }
                    try beat()
                    lock.withLock { lastBeatWritten = lodestar_monotonic() }
                }
                if online { restartStalledWatch(now: now) }
                if online && settings.compaction > 0 && now - compaction.lastAttempt >= settings.compaction {
                    compaction.lastAttempt = now
                    compactHistory()
                }
                backoff = 0.25
            } catch is Skipped {
                // Waiting out the back-off.
            } catch {
                lost(error)
                // Move the watch too: it may hang on the same dead member.
                watch.stop()
                retryAt = now + backoff
                // Never longer than a third of the lease: when etcd comes back (its new leader
                // restores the leases' full TTL), the keepalive must land before the lease ends,
                // or this POP's votes and heartbeat vanish and the others decide without it.
                backoff = min(backoff * 2, 5, Double(settings.leaseTTL) / 3)
            }
            recompute()
            if settings.rttMean { reportMeanRTT() }
        }
    }

    /// The lease thread's turn without requests (etcd's back-off runs).
    struct Skipped: Error {}

    /// A watch that has delivered none of this POP's own heartbeats for three heartbeats and a
    /// request's deadline, while they were written, is stalled (a peer dripping octets keeps the
    /// connection open and the idle deadline away): it is started again, resuming where it was.
    func restartStalledWatch(now: Double) {
        let stalled = lock.withLock { () -> Double? in
            let since = max(ownDelay?.at ?? 0, watchStartedAt)
            guard watchStartedAt > 0, lastBeatWritten > since + settings.heartbeat,
                now - since > 3 * settings.heartbeat + settings.timeout + 1
            else { return nil }
            watchStartedAt = now  // once per stall: the sync thread sets it again as it restarts
            return now - since
        }
        guard let stalled else { return }
        logger.warning(
            "cluster: the watch on \(client.endpoint) delivered none of this POP's heartbeats for \(Int(stalled)) s (a stalled stream); starting it again",
            metadata: ["peer": "\(client.endpoint)"])
        watch.stop()
    }

    /// The prober's verdicts (nil: not checked any more). Written on transitions only.
    package func verdicts(_ verdicts: [EndpointObservation]) {
        lock.withLock { _ = book.apply(.verdicts(verdicts), now: Date().timeIntervalSince1970) }
        recompute()
    }

    /// This POP's region RTT excess (from its prober), published with the next heartbeat; in
    /// force here at once unless the mean over the POPs is (`rtt: mean`).
    package func liveRTT(_ extra: [String: Double]) {
        lock.withLock { ownRTT = extra }
        if settings.rttMean { reportMeanRTT() } else { health.liveRTT(extra) }
    }

    /// The mean over the POPs whose heartbeat counts (and this one) of each region's RTT excess.
    func reportMeanRTT() {
        let now = Date().timeIntervalSince1970
        let mean = lock.withLock { () -> [String: Double]? in
            let frozen = holdingView(fallback: link.fellBack)
            var sums: [String: (Double, Int)] = [:]
            var sources = [ownRTT]
            if !link.fellBack {
                for (pop, rtt) in popRTT where pop != settings.pop {
                    guard let at = book.heartbeats[pop], frozen || now - at <= settings.staleAfter else { continue }
                    sources.append(rtt)
                }
            }
            for m in sources {
                for (r, v) in m {
                    sums[r, default: (0, 0)].0 += v
                    sums[r, default: (0, 0)].1 += 1
                }
            }
            let mean = sums.mapValues { $0.0 / Double($0.1) }
            guard mean != lastMeanRTT else { return nil }
            lastMeanRTT = mean
            return mean
        }
        if let mean { health.liveRTT(mean) }
    }

    /// Decides every endpoint again; tells `health` what changed.
    func recompute() {
        let now = Date().timeIntervalSince1970
        let mono = lodestar_monotonic()
        let actions = lock.withLock { () -> [VoteBook.Action] in
            let (fallback, changed, away) = link.fallback(now: mono)
            if changed {
                if !fallback {
                    logger.notice("cluster: the shared health view decides")
                } else if link.lastContact != nil {
                    logger.warning(
                        "cluster: etcd away for \(Int(away)) s: this POP's own verdicts decide until it is back")
                }
            }
            return book.apply(.decide(fallback: fallback, frozen: holdingView(fallback: fallback)), now: now)
        }
        for case .decided(let changes) in actions { health.checked(changes) }
    }
}
