import CLodestarSys
import Foundation
import Settings

/// What the admin API and /metrics show of the cluster.
extension ClusterController {
    package struct VoteStatus: Encodable, Sendable {
        package var pop: String, up: Bool, reason: String, ageSeconds: Double, counted: Bool
    }

    package struct EndpointStatus: Encodable, Sendable {
        package var endpoint: String, up: Bool?, reason: String, policy: String
        package var votes: [VoteStatus]
    }

    package struct OverrideProvenance: Encodable, Sendable {
        package var kind: String, name: String, by: String, at: Double
    }

    package struct Status: Encodable, Sendable {
        package var pop: String, connected: Bool, etcd: String, lastError: String?
        /// Seconds since the last exchange with etcd: how old the shared view may be.
        package var viewAgeSeconds: Double?
        package var ownVerdictsOnly: Bool
        package var policy: String, quorum: Double, revision: Int64
        package var writes: Int, writeRequests: Int, writeBytes: Int
        /// Compactions of etcd's history this POP did (one POP of all does each).
        package var compactions: Int
        /// Another process writing this POP's name (seen in the last 2 minutes).
        package var popNameConflict: String?
        package var pops: [POPStatus]
        package var endpoints: [EndpointStatus]
        package var overrides: [OverrideProvenance]
    }

    package struct POPStatus: Encodable, Sendable {
        package var pop: String, host: String?, heartbeatAgeSeconds: Double
        /// Its clock minus this POP's, at its last heartbeat seen live.
        package var clockOffsetSeconds: Double?
    }

    package func status() -> Status {
        let now = Date().timeIntervalSince1970
        let mono = lodestar_monotonic()
        return lock.withLock {
            let frozen = holdingView(fallback: link.fellBack)
            let eps = book.endpoints.sorted().map { e -> EndpointStatus in
                let all = book.ballot(e)
                let policy = book.policy(for: e, fallback: link.fellBack)
                return EndpointStatus(
                    endpoint: e, up: book.decided[e]?.up, reason: book.decided[e]?.reason ?? "not checked",
                    policy: settings.localVeto.contains(e)
                        ? "local (veto)" : (link.fellBack ? "local (etcd away)" : policy.rawValue),
                    votes: all.sorted { $0.key < $1.key }.map { pop, v in
                        VoteStatus(
                            pop: pop, up: v.up, reason: v.reason, ageSeconds: max(0, now - v.at),
                            counted: policy == .local
                                ? pop == settings.pop
                                : (pop == settings.pop || frozen || now - v.at <= settings.staleAfter))
                    })
            }
            let provenance = overrideRecords.sorted { $0.key < $1.key }.map { id, r -> OverrideProvenance in
                let parts = id.split(separator: "/", maxSplits: 1).map(String.init)
                return OverrideProvenance(kind: parts.first ?? "", name: parts.last ?? "", by: r.by, at: r.at)
            }
            return Status(
                pop: settings.pop, connected: link.connected, etcd: client.endpoint.description,
                lastError: link.lastError,
                viewAgeSeconds: link.lastContact.map { mono - $0 }, ownVerdictsOnly: link.fellBack,
                policy: settings.policy.rawValue,
                quorum: settings.quorum, revision: revision, writes: writes, writeRequests: writeRequests,
                writeBytes: writeBytes,
                compactions: compactions,
                popNameConflict: nameConflict.flatMap { mono - $0.at <= 120 ? $0.text : nil },
                pops: book.heartbeats.sorted { $0.key < $1.key }.map { pop, at in
                    POPStatus(
                        pop: pop, host: liveBeats[pop]?.host, heartbeatAgeSeconds: max(0, now - at),
                        clockOffsetSeconds: liveBeats[pop]?.clockOffset)
                },
                endpoints: eps,
                overrides: provenance)
        }
    }
}
