import Foundation

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
