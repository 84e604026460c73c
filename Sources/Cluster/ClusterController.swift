import CLodestarSys
import Foundation
package import Health
package import Logging
package import Settings

/// Many POPs, one view, on etcd: this POP's health verdicts published as votes under a lease,
/// every POP's votes read back and decided by the health policy; admin overrides and external
/// health written to etcd and applied by every POP from a watch.
///
/// Two threads of its own, never a lock held across I/O: `sync` reads everything and then
/// watches from that revision (after a reconnection it resumes from the last revision seen, and
/// reads everything again only when that history was compacted); `lease` keeps the lease alive, writes votes on transitions and one heartbeat key per POP, and
/// re-decides as votes age. When etcd is away (unreachable, no quorum, slow: every request has
/// a deadline) queries and probes never wait: the last shared view is kept (votes do not age
/// out), and after `fallback-after` this POP's own verdicts decide, until etcd is back.
package final class ClusterController: @unchecked Sendable {
    package let settings: ClusterSettings
    let keys: ClusterKeys
    let client: EtcdClient
    let logger: Logger
    /// Where the decisions, the shared overrides and external input, and the mean RTT go.
    let health: HealthSink
    /// Where this POP's anycast maintenance, set from any POP, goes.
    let anycast: AnycastSink

    let lock = NSLock()
    /// Every POP's votes and this POP's verdicts, and the decisions made from them.
    var book: VoteBook
    var lastHeartbeat = 0.0
    /// Region RTT excess (ms) per POP, published with its heartbeat; this POP's own; the mean last reported.
    var popRTT: [String: [String: Double]] = [:]
    var ownRTT: [String: Double] = [:]
    var lastMeanRTT: [String: Double]? = nil
    /// Anycast protocols of this POP withdrawn through the cluster.
    var clusterWithdrawn: Set<String> = []
    var overrideRecords: [String: OverrideRecord] = [:]
    var lease: Int64 = 0
    var lastKeepAlive = 0.0
    /// Whether etcd is reached, since when it is away, and the hold after a reconnection.
    var link: ClusterLink
    var revision: Int64 = 0
    var stopped = false
    /// Keys written, requests that wrote them (votes go many to a transaction), their octets.
    var writes = 0
    var writeRequests = 0
    var writeBytes = 0
    /// etcd's history compaction (the lease thread's own), and how many this POP did (under `lock`).
    var compaction = Compaction()
    var compactions = 0
    let watch = EtcdClient.Watch()
    var threads: [Thread] = []
    let done = DispatchGroup()

    /// An override as stored in etcd: who made it and when.
    package struct OverrideRecord: Codable, Sendable, Equatable {
        package var state: AdminOverride.State?
        package var weight: Double?
        package var by: String
        package var at: Double
    }

    struct ExternalRecord: Codable {
        var up: Bool
        var reason: String
        var expiresAt: Double
        var by: String
    }

    package init(settings: ClusterSettings, logger: Logger, health: HealthSink, anycast: AnycastSink) {
        self.settings = settings
        self.logger = logger
        self.health = health
        self.anycast = anycast
        keys = ClusterKeys(prefix: settings.prefix, pop: settings.pop)
        link = ClusterLink(
            staleAfter: settings.staleAfter, fallbackAfter: settings.fallbackAfter, now: lodestar_monotonic())
        book = VoteBook(VoteBook.Policy(settings))
        client = EtcdClient(
            endpoints: settings.endpoints, timeout: settings.timeout,
            credentials: settings.user.map { ($0, settings.password ?? "") }, tls: settings.tls)
    }

    var isStopped: Bool { lock.withLock { stopped } }

    /// How late this POP's own last heartbeat arrived through etcd, and when (monotonic): the
    /// others' offsets are judged only while this is small (etcd commits promptly).
    var ownDelay: (seconds: Double, at: Double)? = nil
    /// When the current watch started, and when this POP last wrote its heartbeat (monotonic): a
    /// watch that delivers none of this POP's heartbeats for long is stalled (a peer that drips
    /// octets keeps it open), and is started again.
    var watchStartedAt = 0.0
    var lastBeatWritten = 0.0

    /// This process among all that ever wrote this POP's heartbeat.
    let instance = UUID().uuidString

    static let host: String = {
        var buf = [CChar](repeating: 0, count: 256)
        return gethostname(&buf, buf.count) == 0 ? String(cString: buf) : "?"
    }()

    /// Votes per transaction (1 after etcd refused a batch); under `lock`.
    var voteBatch = 100

    var knownExternal: Set<String> = []

    /// Clock offsets larger than this are logged.
    static let skewTolerance = 5.0

    var skewWarned: Set<String> = []

    /// Each POP's host and clock offset (its time minus ours) at its last heartbeat seen live.
    var liveBeats: [String: (host: String?, clockOffset: Double)] = [:]

    /// Another process heard writing this POP's heartbeat, and when (monotonic).
    var nameConflict: (text: String, at: Double)? = nil

    // MARK: life cycle

    package func start() {
        for name in ["cluster-sync", "cluster-lease"] {
            done.enter()
            let t = Thread { [self] in
                if name == "cluster-sync" { syncLoop() } else { leaseLoop() }
                done.leave()
            }
            t.name = name
            t.start()
            threads.append(t)
        }
        logger.info(
            "cluster: POP \(settings.pop) on etcd \(settings.endpoints.map(\.description).joined(separator: ", ")) under \(keys.root); health policy \(settings.policy.rawValue)",
            metadata: ["peer": "\(settings.endpoints.first.map(\.description) ?? "")"])
    }

    /// Stops both threads (at most a request's deadline) and revokes the lease: this POP's votes
    /// vanish at once instead of at the lease's end.
    package func stop() {
        let leaseID = lock.withLock { () -> Int64 in
            stopped = true
            return lease
        }
        watch.stop()
        _ = done.wait(timeout: .now() + settings.timeout + 1)
        if leaseID != 0 { try? client.revoke(leaseID) }
    }

    /// Sleeps `seconds` in small steps, returning early when stopped.
    func pause(_ seconds: Double) {
        let end = lodestar_monotonic() + seconds
        while !isStopped && lodestar_monotonic() < end { usleep(50_000) }
    }

    /// Whether every vote counts as in the last shared view, fresh or not (under the lock).
    func holdingView(fallback: Bool) -> Bool {
        link.holding(fallback: fallback, now: lodestar_monotonic())
    }

    func contact() {
        let now = lodestar_monotonic()
        let (wasAway, age) = lock.withLock {
            link.contact(now: now, others: Set(book.heartbeats.keys).subtracting([settings.pop]))
        }
        if wasAway {
            logger.notice(
                "cluster: connected to etcd at \(client.endpoint)\(age.map { " after \(String(format: "%.1f", $0)) s away" } ?? "")",
                metadata: ["peer": "\(client.endpoint)"])
        }
    }

    func lost(_ error: Error) {
        let now = lodestar_monotonic()
        let (news, stopping, never) = lock.withLock {
            (link.lost("\(error)", now: now), stopped, link.lastContact == nil)
        }
        if news && !stopping {
            let next =
                never
                ? "this POP's own verdicts decide until it is reached"
                : "keeping the last shared view, own verdicts after \(Int(settings.fallbackAfter)) s"
            logger.error(
                "cluster: etcd unreachable (\(error)); \(next)",
                metadata: ["peer": "\(client.endpoint)", "reason": "\(error)"])
        }
    }
}
