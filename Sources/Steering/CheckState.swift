import Foundation

/// How one health check's results turn into up/down: rise/fall hysteresis and flap damping.
///
/// Defaults: rise 2 and fall 3 at a 10 s interval (gdnsd checks every 10 s but needs 20 successes
/// to come up and 10 failures to go down — minutes; Route 53 uses 3 both ways at 30 s). A failed
/// origin is out within interval × fall = 30 s, back within 20 s, and flapping is handled by
/// damping instead of by long counters.
public struct CheckPolicy: Sendable, Equatable, Hashable {
    /// Consecutive successes to go from down to up.
    public var rise = 2
    /// Consecutive failures to go from up to down.
    public var fall = 3
    /// Flap damping (RFC 2439's scheme): each up→down change adds `penaltyPerFlap`; the penalty
    /// halves every `halfLife` seconds; above `suppress` the check is held down until the penalty
    /// decays below `reuse`, and never longer than `maxHold` seconds.
    public var penaltyPerFlap = 1000.0
    public var suppress = 2000.0
    public var reuse = 750.0
    public var halfLife = 60.0
    public var maxHold = 600.0

    public init() {}
}

/// A check result.
public enum CheckOutcome: Sendable, Equatable {
    case success(rtt: Double)
    case failure(reason: String)
    /// The check could not run here (out of file descriptors, buffers, local ports): it says
    /// nothing about the target, whose state stays as it was. A local shortage must never mark an
    /// origin down or withdraw a route.
    case local(reason: String)
}

/// What the owner of a check state must do after a result.
public enum CheckAction: Sendable, Equatable {
    case wentUp(reason: String)
    case wentDown(reason: String)
    /// Checks pass but the check is held down by damping until the given time (at the latest).
    case heldDown(until: Double, penalty: Double)
}

/// The state machine of one check: a value driven by results and a clock, returning actions.
public struct CheckState: Sendable, Equatable {
    public let policy: CheckPolicy
    /// nil until the first result: the first result decides at once (cold start, gdnsd's initial round).
    public private(set) var up: Bool?
    public private(set) var successes = 0
    public private(set) var failures = 0
    public private(set) var lastReason = "not checked yet"
    /// Damping penalty as of `penaltyAt`.
    private var penaltyValue = 0.0
    private var penaltyAt = 0.0
    private var suppressedSince: Double? = nil
    public private(set) var flaps = 0

    public init(policy: CheckPolicy = CheckPolicy()) {
        self.policy = policy
    }

    /// A state resumed from an earlier run (the persisted state file): thresholds apply from there.
    public init(policy: CheckPolicy, resumed up: Bool, reason: String) {
        self.policy = policy
        self.up = up
        self.lastReason = reason
    }

    /// The decayed penalty at `now`.
    public func penalty(at now: Double) -> Double {
        penaltyValue * pow(0.5, max(0, now - penaltyAt) / policy.halfLife)
    }

    /// Whether damping holds the check down at `now`.
    public func isSuppressed(at now: Double) -> Bool {
        guard let since = suppressedSince else { return false }
        return penalty(at: now) >= policy.reuse && now - since < policy.maxHold
    }

    /// Feeds one result; returns what changed.
    public mutating func record(_ outcome: CheckOutcome, now: Double) -> [CheckAction] {
        var actions: [CheckAction] = []
        if suppressedSince != nil && !isSuppressed(at: now) { suppressedSince = nil }
        switch outcome {
        case .success:
            successes += 1
            failures = 0
            lastReason = "ok"
            let wantUp = up == nil || (up == false && successes >= policy.rise)
            if wantUp {
                if isSuppressed(at: now) {
                    actions.append(.heldDown(until: holdEnd(now: now), penalty: penalty(at: now)))
                } else {
                    let reason = up == nil ? "first check passed" : "\(successes) checks passed"
                    up = true
                    actions.append(.wentUp(reason: reason))
                }
            }
        case .local(let reason):
            lastReason = "not checked: \(reason)"
            return actions
        case .failure(let reason):
            failures += 1
            successes = 0
            lastReason = reason
            if up == nil || (up == true && failures >= policy.fall) {
                let wasUp = up == true
                up = false
                actions.append(.wentDown(reason: reason))
                if wasUp {
                    flaps += 1
                    penaltyValue = penalty(at: now) + policy.penaltyPerFlap
                    penaltyAt = now
                    if penaltyValue >= policy.suppress && suppressedSince == nil { suppressedSince = now }
                }
            }
        }
        return actions
    }

    /// When the hold ends: the penalty decays to `reuse`, capped by `maxHold`.
    func holdEnd(now: Double) -> Double {
        let p = penalty(at: now)
        let decay = p > policy.reuse ? policy.halfLife * log2(p / policy.reuse) : 0
        return min(now + decay, (suppressedSince ?? now) + policy.maxHold)
    }
}

/// Exponentially weighted moving average of RTTs (seconds), for the latency policy.
public struct RTTAverage: Sendable, Equatable {
    /// Weight of each new sample.
    public let alpha: Double
    public private(set) var value: Double? = nil
    public private(set) var samples = 0

    public init(alpha: Double = 0.3) {
        self.alpha = alpha
    }

    public mutating func add(_ rtt: Double) {
        value = value.map { $0 + alpha * (rtt - $0) } ?? rtt
        samples += 1
    }
}
