/// The link to etcd as the decisions see it, as a value: whether etcd is reached, since when it
/// is away, when this POP's own verdicts take over, and the hold of the last shared view after a
/// reconnection. The threads tell it what happened, with the monotonic time; it says what holds.
/// Unit-tested without etcd (`ClusterLinkTests`).
///
/// The hold: after a reconnection the other POPs' heartbeats are as old as the outage until
/// their next ones arrive. Without the hold, the POP decided from its own vote alone for a few
/// seconds (an origin only it could not reach left its answers, which the quorum policy promises
/// never happens). So the last shared view holds until every other POP known before has a
/// heartbeat written after etcd came back (its revision above the one the linearizable read that
/// proved the quorum returned), or its key is gone, or `max(stale-after, fallback-after)` passed.
package struct ClusterLink: Sendable {
    package let staleAfter: Double
    package let fallbackAfter: Double
    package private(set) var connected = false
    /// The last successful exchange (nil: never).
    package private(set) var lastContact: Double? = nil
    package private(set) var awaySince: Double?
    package private(set) var lastError: String? = nil
    /// This POP's own verdicts decide (etcd away past `fallback-after`, or never reached).
    package private(set) var fellBack = false
    /// When etcd was last reached again: heartbeats right after are not judged for clock offsets.
    package private(set) var reconnectedAt: Double = 0
    /// The hold's end at the latest (0: no hold), the POPs whose fresh heartbeat it awaits, and the
    /// revision a heartbeat must be written after (`Int64.max` until the sync thread has read it).
    package private(set) var holdUntil: Double = 0
    package private(set) var awaitedBeats: Set<String> = []
    package private(set) var holdRevision: Int64 = .max

    package init(staleAfter: Double, fallbackAfter: Double, now: Double) {
        self.staleAfter = staleAfter
        self.fallbackAfter = fallbackAfter
        awaySince = now
    }

    /// A successful exchange. `others`: the other POPs heard before. Returns whether etcd was
    /// away until now (to say so), and for how long.
    package mutating func contact(now: Double, others: Set<String>) -> (wasAway: Bool, away: Double?) {
        let was = connected
        let away = awaySince.map { now - $0 }
        if !was && lastContact != nil {
            awaitedBeats = others
            holdRevision = .max
            holdUntil = others.isEmpty ? 0 : now + max(staleAfter, fallbackAfter)
            reconnectedAt = now
        }
        connected = true
        lastContact = now
        awaySince = nil
        lastError = nil
        return (!was, away)
    }

    /// A failed exchange. Returns whether this is news (connected until now, or the first
    /// failure before etcd was ever reached).
    package mutating func lost(_ error: String, now: Double) -> Bool {
        let news = connected || (lastContact == nil && lastError == nil)
        connected = false
        if awaySince == nil { awaySince = now }
        lastError = error
        return news
    }

    /// The store's revision at the linearizable read that proved etcd has a quorum again.
    package mutating func regained(revision: Int64) {
        if holdUntil > 0 && holdRevision == .max { holdRevision = revision }
    }

    /// A POP's heartbeat heard (`live`: from the watch, with its key's `revision`), or its key gone.
    package mutating func heard(pop: String, gone: Bool, live: Bool, revision: Int64) {
        let writtenSince = live && holdRevision != .max && revision > holdRevision
        if (writtenSince || gone) && awaitedBeats.remove(pop) != nil && awaitedBeats.isEmpty { holdUntil = 0 }
    }

    /// Whether every vote counts as in the last shared view, fresh or not: while etcd is away short
    /// of `fallback-after`, and after it comes back until the hold ends.
    package func holding(fallback: Bool, now: Double) -> Bool {
        (!connected && !fallback) || (connected && now < holdUntil)
    }

    /// Whether this POP's own verdicts decide now, and whether that just changed (to say so).
    package mutating func fallback(now: Double) -> (fallback: Bool, changed: Bool, away: Double) {
        let away = awaySince.map { now - $0 } ?? 0
        let fallback = !connected && (lastContact == nil || away >= fallbackAfter)
        defer { fellBack = fallback }
        return (fallback, fallback != fellBack, away)
    }

    /// Whether heartbeats arriving now show other POPs' clocks truly: connected since long enough
    /// for the burst after a reconnection to have passed.
    package func settled(now: Double) -> Bool {
        connected && now - reconnectedAt > staleAfter
    }
}
