/// What should happen to one anycast prefix.
package enum RouteDesire: String, Sendable, Equatable, Codable {
    /// Announced normally.
    case announce
    /// Still announced, with RFC 8326 GRACEFUL_SHUTDOWN, so peers move traffic before the withdrawal.
    case drain
    /// The prefix's static protocol disabled in BIRD.
    case withdraw
}

/// The decision for one prefix: a value driven by health and a clock, returning whether it changed.
///
/// Health itself (the self-check's rise/fall and flap damping) is a `CheckState` upstream; this adds
/// what only routes need: a soft drain before withdrawing, and the guard against withdrawing the last
/// POP — when fewer than `minOtherPaths` paths to the prefix from other POPs are visible in BIRD, the
/// prefix stays announced and `alarm` says why (Cloudflare's 1.1.1.1 outage of 2025-07-14 was a
/// self-withdrawal everywhere).
package struct RouteHealth: Sendable, Equatable {
    package var minOtherPaths: Int
    package var drainTime: Double
    package private(set) var desired: RouteDesire = .withdraw
    package private(set) var reason = "not checked yet"
    package private(set) var alarm: String? = nil
    package private(set) var drainSince: Double? = nil
    package private(set) var lastChange: Double? = nil
    /// Announced → withdrawn transitions.
    package private(set) var withdrawals = 0

    package init(minOtherPaths: Int = 0, drainTime: Double = 0) {
        self.minOtherPaths = minOtherPaths
        self.drainTime = drainTime
    }

    /// At start, when BIRD already announces the prefix (left by a run that crashed, or set up before
    /// lodestar): take that as the current state, so that leaving it goes through the guard like any
    /// other withdrawal instead of dropping the last POP while the first self-checks run.
    package mutating func adoptAnnounced(now: Double) {
        guard lastChange == nil, desired == .withdraw else { return }
        set(.announce, "announced before lodestar started", now)
    }

    /// Whether a withdrawal must first count other POPs' paths (the caller asks BIRD then).
    package func needsPathCount(healthy: Bool) -> Bool {
        !healthy && desired != .withdraw && minOtherPaths > 0
    }

    /// One evaluation. `healthy`: the node should take traffic (`why` says why not); `otherPaths`:
    /// paths to the prefix from other POPs seen in BIRD (nil: unknown); `stopping`: shutting down,
    /// which withdraws whatever the guard says (the node stops answering). Returns true on a change
    /// of `desired`.
    package mutating func evaluate(healthy: Bool, why: String, otherPaths: Int?, stopping: Bool = false, now: Double)
        -> Bool
    {
        let before = desired
        if healthy && !stopping {
            alarm = nil
            drainSince = nil
            if desired != .announce { set(.announce, why, now) }
            return desired != before
        }
        guard desired != .withdraw else {
            reason = why
            alarm = nil
            return false
        }
        if !stopping && minOtherPaths > 0 {
            let seen = otherPaths ?? -1
            if seen < minOtherPaths {
                alarm =
                    otherPaths == nil
                    ? "should withdraw (\(why)) but cannot count other POPs' paths; keeping the announcement"
                    : "should withdraw (\(why)) but only \(seen) other path(s) visible, fewer than the minimum \(minOtherPaths); keeping the announcement"
                if desired == .drain {
                    drainSince = nil
                    set(.announce, "kept: \(why)", now)
                }
                return desired != before
            }
        }
        alarm = nil
        if !stopping && drainTime > 0 {
            if desired == .announce {
                drainSince = now
                set(.drain, why, now)
                return true
            }
            if let since = drainSince, now - since < drainTime { return false }
        }
        drainSince = nil
        withdrawals += 1
        set(.withdraw, why, now)
        return true
    }

    mutating func set(_ d: RouteDesire, _ why: String, _ now: Double) {
        desired = d
        reason = why
        lastChange = now
    }
}
