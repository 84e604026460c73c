import Foundation
package import Settings

/// One POP's verdict on one endpoint, as published under `PREFIX/votes/ENDPOINT/POP`.
package struct Vote: Codable, Sendable, Equatable {
    package var up: Bool
    package var reason: String
    /// Unix time of the verdict's last publication (transitions and heartbeats).
    package var at: Double

    package init(up: Bool, reason: String, at: Double) {
        self.up = up
        self.reason = reason
        self.at = at
    }
}

/// The consensus: a pure function of the votes, so that every POP holding the same votes decides
/// the same, and `explain` and the tests can call it.
package enum Consensus {
    package struct Outcome: Sendable, Equatable {
        package var up: Bool
        package var reason: String
    }

    /// The endpoint's health from `votes` (POP name → vote). `own` is this POP's name; `local`
    /// (the policy, a veto endpoint, or the fallback when etcd has been away too long) takes its
    /// verdict alone. Votes older than `staleAfter` do not count unless `frozen` (etcd is away and
    /// the last view is kept). nil: no vote counts (the endpoint is treated as not checked).
    package static func decide(
        votes: [String: Vote], own: String, policy: HealthPolicy, quorum: Double,
        staleAfter: Double, now: Double, frozen: Bool
    ) -> Outcome? {
        if policy == .local {
            guard let v = votes[own] else { return nil }
            return Outcome(up: v.up, reason: v.reason)
        }
        let fresh = votes.filter { $0.key == own || frozen || now - $0.value.at <= staleAfter }.sorted {
            $0.key < $1.key
        }
        guard !fresh.isEmpty else { return nil }
        let downs = fresh.filter { !$0.value.up }
        let total = fresh.count
        let detail = fresh.map { "\($0.key) \($0.value.up ? "up" : "down: \($0.value.reason)")" }.joined(
            separator: "; ")
        let tally = "\(total - downs.count) of \(total) POPs say up (\(detail))"
        switch policy {
        case .local:
            return nil
        case .quorum:
            let down = Double(downs.count) > quorum * Double(total) + 1e-9
            return Outcome(up: !down, reason: (down ? "down by quorum: " : "up by quorum: ") + tally)
        case .anyUp:
            let up = downs.count < total
            return Outcome(up: up, reason: (up ? "up (any-up): " : "down at every POP: ") + tally)
        case .allUp:
            let up = downs.isEmpty
            return Outcome(up: up, reason: (up ? "up at every POP: " : "down (all-up): ") + tally)
        }
    }
}
