package import Anycast
package import Cluster
package import Engine
package import Health
package import Prober

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
    /// Where overrides, external input and anycast maintenance go: this POP alone, or the cluster.
    var shared: SharedState { get }
    /// Waits until the state file holds the changes made so far (an admin change answers after).
    func flushState()
    /// External health input in force, by endpoint (expiry on the monotonic clock).
    var externalInputs: [String: ExternalInput] { get }
    /// How long external input lasts without a `ttl` (`prober.external-stale-after`).
    var externalStaleAfter: Double { get }
    /// The cluster's view (etcd, votes, provenance of overrides), when configured.
    var clusterStatus: ClusterController.Status? { get }
}

/// A failure to start the admin API, with a message a person can act on.
package struct AdminError: Error, CustomStringConvertible, Sendable {
    package var description: String
    package init(_ description: String) { self.description = description }
}
