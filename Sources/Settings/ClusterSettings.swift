/// The `cluster:` section: where etcd is, this POP's name, and the health policy.
package struct ClusterSettings: Sendable, Equatable {
    package var endpoints: [EtcdEndpoint] = []
    /// Every key of the deployment lives under this prefix (one deployment per prefix).
    package var prefix = "/lodestar"
    /// This POP's name: its votes' key, and who made an override.
    package var pop = ""
    package var tls = TLSSettings()
    package var user: String? = nil
    package var password: String? = nil
    /// The lease on this POP's votes: they vanish this long after the POP stops renewing it.
    package var leaseTTL = 10
    /// Votes are written on every transition and re-written this often (not on every probe).
    package var heartbeat = 5.0
    /// Each request to etcd must finish within this (a slow etcd is an unreachable one).
    package var timeout = 2.0
    /// etcd's history is compacted this often, by one POP of all (0: never, etcd's own
    /// `--auto-compaction-retention` or the operator does it).
    package var compaction = 300.0
    package var policy = HealthPolicy.quorum
    /// `quorum`: down when more than this fraction of the voting POPs say down.
    package var quorum = 0.5
    /// Votes older than this do not count (a POP whose heartbeats stopped, its lease not yet expired).
    package var staleAfter = 20.0
    /// etcd away longer than this: this POP's own verdicts decide (before it: the last shared view).
    package var fallbackAfter = 30.0
    /// The latency step uses each region's RTT excess averaged over the POPs (true) or this POP's own.
    package var rttMean = false
    /// Endpoints whose health this POP's own verdict decides alone (a local veto).
    package var localVeto: Set<String> = []

    package init() {}
}
