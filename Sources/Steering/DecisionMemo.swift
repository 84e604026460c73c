import Foundation
public import Health

extension SteeringTable {
    /// The decisions of one health state taken ahead (see `DecisionMemo`), for at most `limit`
    /// class-and-family pairs in all (about 5 MiB; a name beyond that decides per query).
    /// `now` is the monotonic clock in seconds.
    public func memo(health: HealthFacts, now: Double, limit: Int = 1 << 16) -> DecisionMemo {
        var base: [Int] = []
        var validFrom: [Double] = []
        var decisions: [Decision?] = []
        for (n, c) in names.enumerated() {
            guard c.stickyV4 < 0 && c.stickyV6 < 0, decisions.count + 2 * c.classes.count <= limit else {
                base.append(-1)
                validFrom.append(.infinity)
                continue
            }
            // Once every slow-start ramp of the name's pools and endpoints has ended, health factors
            // are 0 or 1 and settle times are past: the decision stays what it is at that moment.
            var from = now
            for p32 in c.pools {
                let p = Int(p32)
                let window = poolSlowStart[p]
                guard window > 0 else { continue }
                if health.poolPassing[p] { from = max(from, health.poolSince[p] + window) }
                for k in Int(poolFirst[p])..<Int(poolFirst[p] + poolCount[p]) {
                    let e = Int(poolEndpoints[k])
                    if health.endpointUp[e] { from = max(from, health.endpointSince[e] + window) }
                }
            }
            base.append(decisions.count)
            validFrom.append(from)
            for cls in 0..<c.classes.count {
                for family in [4, 6] {
                    var trace = NoTrace()
                    let d = decide(
                        c, name: n, class: cls, depth: 0, family: family, clientFamily: 0, high: 0, low: 0,
                        health: health, now: from, random: 0, trace: &trace)
                    // Only what no query's randomness drew and no later moment changes.
                    decisions.append(d.repeatable && d.stableUntil == .infinity ? d : nil)
                }
            }
        }
        return DecisionMemo(base: base, validFrom: validFrom, decisions: decisions)
    }
}

/// Decisions taken ahead for one health state: for every name whose answer depends only on the
/// client's location class (no weighted or spread pick drawn per query, not sticky), the decision
/// for each class and address family, valid from the moment its pools' slow-start ramps end.
/// A query then only locates the client: the rest of `decide` is a read.
public final class DecisionMemo: Sendable {
    /// Per name: the index of its class 0, IPv4, in `decisions`; -1 when the name is not memoised.
    let base: [Int]
    /// Per name: monotonic seconds from which its memoised decisions hold.
    let validFrom: [Double]
    /// Two per class (IPv4, IPv6); nil where the decision drew on randomness.
    let decisions: [Decision?]

    init(base: [Int], validFrom: [Double], decisions: [Decision?]) {
        self.base = base
        self.validFrom = validFrom
        self.decisions = decisions
    }

    /// Names with decisions taken ahead, and the decisions kept.
    public var names: Int { base.count { $0 >= 0 } }
    public var count: Int { decisions.count { $0 != nil } }

    @inline(__always)
    func decision(name n: Int, class cls: Int, family: Int, now: Double) -> Decision? {
        let b = base[n]
        guard b >= 0, now >= validFrom[n] else { return nil }
        return decisions[b + cls * 2 + (family == 6 ? 1 : 0)]
    }
}
