public import Health
package import Settings

/// Every POP's votes and this POP's own verdicts, as a value: what the cluster decides health
/// from. The controller's threads feed it events (this POP's verdicts, votes and heartbeats read
/// from etcd) and take from it the votes to write and the decisions that changed; the time and
/// the state of the connection come in with each event. Unit-tested without etcd.
package struct VoteBook: Sendable {
    package struct Policy: Sendable, Equatable {
        package var pop: String
        package var policy: HealthPolicy
        package var quorum: Double
        package var staleAfter: Double
        package var localVeto: Set<String>

        package init(
            pop: String, policy: HealthPolicy, quorum: Double = 0.5, staleAfter: Double = 20,
            localVeto: Set<String> = []
        ) {
            self.pop = pop
            self.policy = policy
            self.quorum = quorum
            self.staleAfter = staleAfter
            self.localVeto = localVeto
        }

        package init(_ s: ClusterSettings) {
            self.init(pop: s.pop, policy: s.policy, quorum: s.quorum, staleAfter: s.staleAfter, localVeto: s.localVeto)
        }
    }

    package enum Event: Sendable {
        /// This POP's prober's verdicts (nil `up`: not checked any more).
        case verdicts([EndpointObservation])
        /// A POP's vote as etcd has it (nil: deleted).
        case vote(endpoint: String, pop: String, Vote?)
        /// A POP's heartbeat, the Unix time it counts from (nil: its key is gone, its votes drop).
        case heartbeat(pop: String, at: Double?)
        /// Everything read from etcd is about to be read again.
        case forgetShared
        /// Decide every endpoint again: after etcd has been away past `fallback-after` this POP's
        /// verdicts decide alone (`fallback`); while the last shared view holds, every vote
        /// counts however old (`frozen`).
        case decide(fallback: Bool, frozen: Bool)
    }

    package enum Action: Sendable, Equatable {
        /// Endpoints whose decision changed (nil `up`: nothing known any more).
        case decided([EndpointObservation])
    }

    package let rules: Policy
    /// This POP's verdicts (from its prober), and those not yet written.
    package private(set) var own: [String: Vote] = [:]
    package private(set) var unpublished: Set<String> = []
    /// Every POP's votes by endpoint, as etcd has them.
    package private(set) var votes: [String: [String: Vote]] = [:]
    /// Every POP's last heartbeat (Unix time): a vote is as fresh as its POP's heartbeat.
    package private(set) var heartbeats: [String: Double] = [:]
    package private(set) var decided: [String: Consensus.Outcome] = [:]

    package init(_ rules: Policy) {
        self.rules = rules
    }

    /// Applies one event at `now` (Unix time); what changed.
    package mutating func apply(_ event: Event, now: Double) -> [Action] {
        switch event {
        case .verdicts(let verdicts):
            for v in verdicts {
                let before = own[v.endpoint]
                if let up = v.up {
                    own[v.endpoint] = Vote(up: up, reason: v.reason, at: now)
                    if before?.up != up || before?.reason != v.reason { unpublished.insert(v.endpoint) }
                } else {
                    own[v.endpoint] = nil
                    unpublished.remove(v.endpoint)
                }
            }
        case .vote(let endpoint, let pop, let vote):
            votes[endpoint, default: [:]][pop] = vote
        case .heartbeat(let pop, let at):
            heartbeats[pop] = at
        case .forgetShared:
            votes = [:]
            heartbeats = [:]
        case .decide(let fallback, let frozen):
            var out: [EndpointObservation] = []
            for endpoint in Set(own.keys).union(votes.keys).union(decided.keys) {
                let all = ballot(endpoint)
                let outcome = Consensus.decide(
                    votes: all, own: rules.pop, policy: policy(for: endpoint, fallback: fallback),
                    quorum: rules.quorum, staleAfter: rules.staleAfter, now: now, frozen: frozen)
                guard outcome != decided[endpoint] else { continue }
                decided[endpoint] = outcome
                out.append(
                    EndpointObservation(endpoint: endpoint, up: outcome?.up, reason: outcome?.reason ?? "not checked"))
            }
            return out.isEmpty ? [] : [.decided(out.sorted { $0.endpoint < $1.endpoint })]
        }
        return []
    }

    /// The votes to write: those changed since the last write (or all, under a new lease), each
    /// dated `now` and taken out of `unpublished` (a verdict changing while they are written is
    /// pending again, not lost).
    package mutating func takeUnpublished(all: Bool, now: Double) -> [(endpoint: String, vote: Vote)] {
        let names = all ? Set(own.keys) : unpublished
        var out: [(endpoint: String, vote: Vote)] = []
        for n in names.sorted() {
            guard var v = own[n] else { continue }
            v.at = now
            own[n] = v
            out.append((n, v))
            unpublished.remove(n)
        }
        return out
    }

    /// Votes whose write failed: pending again (unless the verdict went meanwhile).
    package mutating func unwritten(_ endpoints: [String]) {
        for n in endpoints where own[n] != nil { unpublished.insert(n) }
    }

    /// Every vote this POP holds is to be written again (a new lease).
    package mutating func republishAll() {
        unpublished = Set(own.keys)
    }

    /// The votes on an endpoint that count: every POP's, dated by its latest heartbeat when that
    /// is newer, without those of POPs whose heartbeat key is gone; and this POP's own.
    package func ballot(_ endpoint: String) -> [String: Vote] {
        var out: [String: Vote] = [:]
        for (pop, vote) in votes[endpoint] ?? [:] {
            guard let beat = heartbeats[pop] else { continue }
            var x = vote
            x.at = max(x.at, beat)
            out[pop] = x
        }
        out[rules.pop] = own[endpoint]
        return out
    }

    /// The policy an endpoint is decided by: this POP's verdict alone for a veto endpoint or while
    /// etcd has been away too long, else the configured one.
    package func policy(for endpoint: String, fallback: Bool) -> HealthPolicy {
        (fallback || rules.localVeto.contains(endpoint)) ? .local : rules.policy
    }

    /// Every endpoint voted on, by this POP or another.
    package var endpoints: Set<String> { Set(own.keys).union(votes.keys) }
}
