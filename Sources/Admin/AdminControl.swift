import Anycast
import Cluster
import Engine
import Health
import Prober
import Steering

/// What the admin API reads and changes, handed to it by the composition root (`Server`): the
/// snapshot store and the prober and anycast status as read-only views, and the few actions an
/// operator may take. The admin module never sees the server's own types.
package protocol AdminControl: AnyObject, Sendable {
    /// The snapshots being served.
    var store: SnapshotStore { get }
    /// The health checks (status, and external health input).
    var prober: Prober { get }
    /// Anycast route health, when configured.
    var anycast: AnycastController? { get }
    /// Reloads done and failed since start.
    var reloadCounts: (ok: Int, failed: Int) { get }
    /// When config and zones were last loaded (start or reload), as Unix time.
    var lastReloadTime: Double { get }
    /// Per zone (origin text), whether its file loaded without errors at the last start or reload.
    var zoneLoads: [String: Bool] { get }
    /// Whether to take traffic (`/ready`), and why not.
    var readiness: (ready: Bool, reason: String) { get }
    /// The admin overrides in force.
    var overrides: AdminOverrides { get }
    /// Re-reads config and zones; the new generation, or why the previous snapshot stays.
    /// Without `force`, a config that would drop every load-balanced name or every zone is refused.
    func reload(force: Bool) -> Result<Int, Error>
    /// Sets (`state`/`weight` given) or clears (given as nil) an override; throws `AdminFailure`.
    func setOverride(_ kind: OverrideKind, name: String, state: AdminOverride.State??, weight: Double??) throws
    /// External health input for an endpoint (shared through the cluster when there is one);
    /// false when there is no such endpoint; throws `AdminFailure`.
    func setExternal(endpoint: String, up: Bool?, reason: String, ttl: Double?) throws -> Bool
    /// Withdraws an anycast protocol for maintenance (nil: automatic) here, or through the
    /// cluster on `pop`; false when this POP has no such protocol; throws `AdminFailure`.
    func setAnycast(proto: String, withdraw: Bool?, pop: String?) throws -> Bool
    /// The cluster's view (etcd, votes, provenance of overrides), when configured.
    var clusterStatus: ClusterController.Status? { get }
}

/// What an override applies to: the path segment of `POST /v1/{regions|pools|endpoints}/NAME`.
package enum OverrideKind: String, Sendable {
    case regions, pools, endpoints
}

/// A request the admin API refuses, with the HTTP status to answer.
package struct AdminFailure: Error, CustomStringConvertible {
    package var status: Int
    package var description: String

    package init(status: Int, description: String) {
        self.status = status
        self.description = description
    }
}

/// A failure to start the admin API, with a message a person can act on.
package struct AdminError: Error, CustomStringConvertible, Sendable {
    package var description: String
    package init(_ description: String) { self.description = description }
}
