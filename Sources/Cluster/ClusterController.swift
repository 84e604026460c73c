import CLodestarSys
import Foundation
import Logging
import Health
import Settings

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
    package typealias Verdict = (endpoint: String, up: Bool?, reason: String)

    package let settings: ClusterSettings
    let client: EtcdClient
    let logger: Logger
    /// Health decided for endpoints (only changes); shared overrides (the whole set); external
    /// health input (endpoint, up or nil for auto, reason, seconds left).
    let onHealth: @Sendable ([Verdict]) -> Void
    let onOverrides: @Sendable (AdminOverrides) -> Void
    let onExternal: @Sendable (String, Bool?, String, Double?) -> Void
    /// Region RTT excess averaged over the POPs (`rtt: mean` only), and this POP's anycast
    /// maintenance (protocol, withdraw or nil for automatic) set from any POP.
    let onRTT: @Sendable ([String: Double]) -> Void
    let onAnycast: @Sendable (String, Bool?) -> Void

    let lock = NSLock()
    /// This POP's verdicts (from its prober), and those not yet written.
    var own: [String: Vote] = [:]
    var unpublished: Set<String> = []
    var lastHeartbeat = 0.0
    /// Every POP's votes by endpoint, as etcd has them.
    var votes: [String: [String: Vote]] = [:]
    /// Every POP's last heartbeat (Unix time): a vote is as fresh as its POP's heartbeat.
    var heartbeats: [String: Double] = [:]
    /// Region RTT excess (ms) per POP, published with its heartbeat; this POP's own; the mean last reported.
    var popRTT: [String: [String: Double]] = [:]
    var ownRTT: [String: Double] = [:]
    var lastMeanRTT: [String: Double]? = nil
    /// Anycast protocols of this POP withdrawn through the cluster.
    var clusterWithdrawn: Set<String> = []
    var overrideRecords: [String: OverrideRecord] = [:]
    var decided: [String: Consensus.Outcome] = [:]
    var lease: Int64 = 0
    var lastKeepAlive = 0.0
    var connected = false
    /// Monotonic time of the last successful exchange with etcd (nil: never).
    var lastContact: Double? = nil
    var awaySince: Double? = lodestar_monotonic()
    var lastError: String? = nil
    var revision: Int64 = 0
    var stopped = false
    var fellBack = false
    /// Keys written, requests that wrote them (votes go many to a transaction), their octets.
    var writes = 0
    var writeRequests = 0
    var writeBytes = 0
    /// Compaction (the lease thread's own): the `compaction` key's version last seen, the store's
    /// revision seen at the last attempt (what the next winner compacts to), when that was, and
    /// how many compactions this POP did.
    var compactVersion: Int64 = 0
    var compactRevision: Int64 = 0
    var lastCompactAttempt = lodestar_monotonic()
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

    package init(settings: ClusterSettings, logger: Logger,
                 onHealth: @escaping @Sendable ([Verdict]) -> Void,
                 onOverrides: @escaping @Sendable (AdminOverrides) -> Void,
                 onExternal: @escaping @Sendable (String, Bool?, String, Double?) -> Void,
                 onRTT: @escaping @Sendable ([String: Double]) -> Void = { _ in },
                 onAnycast: @escaping @Sendable (String, Bool?) -> Void = { _, _ in }) {
        self.settings = settings
        self.onRTT = onRTT
        self.onAnycast = onAnycast
        self.logger = logger
        self.onHealth = onHealth
        self.onOverrides = onOverrides
        self.onExternal = onExternal
        client = EtcdClient(endpoints: settings.endpoints, timeout: settings.timeout,
                            credentials: settings.user.map { ($0, settings.password ?? "") }, tls: settings.tls)
    }

    // MARK: keys

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: "/", with: "%2F")
    }

    static func unescape(_ s: Substring) -> String {
        s.replacingOccurrences(of: "%2F", with: "/").replacingOccurrences(of: "%25", with: "%")
    }

    var root: String { settings.prefix.hasSuffix("/") ? settings.prefix : settings.prefix + "/" }
    func voteKey(_ endpoint: String) -> String { root + "votes/" + Self.escape(endpoint) + "/" + Self.escape(settings.pop) }
    func overrideKey(_ kind: String, _ name: String) -> String { root + "overrides/" + kind + "/" + Self.escape(name) }
    func externalKey(_ endpoint: String) -> String { root + "external/" + Self.escape(endpoint) }
    var aliveKey: String { root + "pops/" + Self.escape(settings.pop) }
    func anycastKey(_ pop: String, _ proto: String) -> String { root + "anycast/" + Self.escape(pop) + "/" + Self.escape(proto) }

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
        logger.info("cluster: POP \(settings.pop) on etcd \(settings.endpoints.map(\.description).joined(separator: ", ")) under \(root); health policy \(settings.policy.rawValue)",
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

    var isStopped: Bool { lock.withLock { stopped } }

    /// Sleeps `seconds` in small steps, returning early when stopped.
    func pause(_ seconds: Double) {
        let end = lodestar_monotonic() + seconds
        while !isStopped && lodestar_monotonic() < end { usleep(50_000) }
    }

    /// Until then (monotonic), after a reconnection, the last shared view holds: the other POPs'
    /// heartbeats are as old as the outage until their next ones arrive, and without this the
    /// POP decided from its own vote alone for a few seconds (an origin only it could not reach
    /// left its answers, which the quorum policy promises never happens).
    var holdUntil: Double = 0
    /// The other POPs whose first live heartbeat since the reconnection is awaited: the hold ends
    /// when the last arrives (or its POP's key goes), or at `fallback-after` at the latest (POPs
    /// reconnect at their own pace, with back-off up to 5 s).
    var awaitedBeats: Set<String> = []
    /// The store's revision when etcd was reached again (`Int64.max` until the sync thread has
    /// read it): a heartbeat counts as fresh for `awaitedBeats` only when written after it, not
    /// one committed before the outage and delivered after.
    var holdRevision: Int64 = .max
    /// When the watch last came back (monotonic): heartbeats are not judged for clock offsets
    /// right after, as those committed late during the outage arrive in a burst.
    var reconnectedAt: Double = 0
    /// How late this POP's own last heartbeat arrived through etcd, and when (monotonic): the
    /// others' offsets are judged only while this is small (etcd commits promptly).
    var ownDelay: (seconds: Double, at: Double)? = nil

    /// Whether every vote counts as in the last shared view, fresh or not (under the lock): while
    /// etcd is away short of `fallback-after`, and after it comes back until `holdUntil`.
    func holdingView(fallback: Bool) -> Bool {
        (!connected && !fallback) || (connected && lodestar_monotonic() < holdUntil)
    }

    func contact() {
        let now = lodestar_monotonic()
        let (was, age) = lock.withLock { () -> (Bool, Double?) in
            let w = connected
            let a = awaySince.map { now - $0 }
            if !w && lastContact != nil {
                awaitedBeats = Set(heartbeats.keys).subtracting([settings.pop])
                holdRevision = .max
                holdUntil = awaitedBeats.isEmpty ? 0 : now + max(settings.staleAfter, settings.fallbackAfter)
                reconnectedAt = now
            }
            connected = true
            lastContact = now
            awaySince = nil
            lastError = nil
            return (w, a)
        }
        if !was {
            logger.notice("cluster: connected to etcd at \(client.endpoint)\(age.map { " after \(String(format: "%.1f", $0)) s away" } ?? "")",
                          metadata: ["peer": "\(client.endpoint)"])
        }
    }

    func lost(_ error: Error) {
        let now = lodestar_monotonic()
        let (was, stopping) = lock.withLock { () -> (Bool, Bool) in
            // Never reached yet: the first failure is said too (once).
            let w = connected || (lastContact == nil && lastError == nil)
            connected = false
            if awaySince == nil { awaySince = now }
            lastError = "\(error)"
            return (w, stopped)
        }
        if was && !stopping {
            let next = lock.withLock { lastContact == nil } ? "this POP's own verdicts decide until it is reached"
                : "keeping the last shared view, own verdicts after \(Int(settings.fallbackAfter)) s"
            logger.error("cluster: etcd unreachable (\(error)); \(next)", metadata: ["peer": "\(client.endpoint)", "reason": "\(error)"])
        }
    }

    // MARK: the sync thread: read, then watch

    func syncLoop() {
        var backoff = 0.2
        // The revision the watch resumes from after a reconnection (0: read everything first).
        var next: Int64 = 0
        while !isStopped {
            do {
                try ensureLease()
                // The store's revision now, from a linearizable read: etcd has a quorum again (a
                // watch alone does not say so).
                let regained: Int64
                if next == 0 {
                    let (rev, kvs) = try client.range(prefix: root)
                    load(kvs, revision: rev)
                    next = rev &+ 1  // EtcdClient.int: at most 2^60
                    regained = rev
                } else {
                    regained = try client.countAndRevision(prefix: root).revision
                }
                contact()
                // Heartbeats written after this revision were written after etcd came back.
                lock.withLock { if holdUntil > 0 && holdRevision == .max { holdRevision = regained } }
                backoff = 0.2
                try client.watch(prefix: root, from: next, handle: watch, idle: 3600) { events, rev in
                    guard !events.isEmpty else { return }
                    apply(events, revision: rev)
                    for e in events {
                        switch e {
                        case .put(let kv): next = max(next, kv.modRevision &+ 1)  // at most 2^60
                        case .delete(_, let r): next = max(next, r &+ 1)
                        }
                    }
                    contact()
                }
            } catch EtcdClient.WatchEnd.compacted(let r) {
                logger.notice("cluster: the watch fell behind compaction (revision \(r)); reading everything again")
                next = 0
            } catch {
                if isStopped { break }
                // Aborted on purpose by the lease thread (a new lease, or a failure it already
                // reported): resume at once.
                if watch.lock.withLock({ watch.stopped }) {
                    watch.lock.withLock { watch.stopped = false }
                    continue
                }
                lost(error)
                pause(backoff * Double.random(in: 0.8...1.2))
                backoff = min(backoff * 2, 5)
            }
            // A stop() during a watch aborts its connection: start the next one clean.
            watch.lock.withLock { watch.stopped = isStopped }
        }
    }

    /// A lease for this POP's votes (granted anew after one expired), and every vote written under it.
    func ensureLease() throws {
        guard lock.withLock({ lease }) == 0 else { return }
        let id = try client.grant(ttl: settings.leaseTTL)
        lock.withLock {
            lease = id
            lastKeepAlive = lodestar_monotonic()
            unpublished = Set(own.keys)
        }
        try beat()
        try publish(all: true)
    }

    /// A POP's heartbeat: when (its clock), its region RTT excess, which process (random per
    /// start) on which host.
    struct Beat: Codable {
        var at: Double
        var rtt: [String: Double]?
        var id: String?
        var host: String?
    }

    /// This process among all that ever wrote this POP's heartbeat.
    let instance = UUID().uuidString
    static let host: String = {
        var buf = [CChar](repeating: 0, count: 256)
        return gethostname(&buf, buf.count) == 0 ? String(cString: buf) : "?"
    }()

    /// The heartbeat: one small key per POP under the lease, whatever the number of endpoints
    /// (votes themselves are written on transitions and after a new lease only).
    func beat() throws {
        let leaseID = lock.withLock { lease }
        guard leaseID != 0 else { return }
        let data = Array(try JSONEncoder().encode(Beat(at: Date().timeIntervalSince1970, rtt: lock.withLock { ownRTT },
                                                        id: instance, host: Self.host)))
        try client.put(aliveKey, data, lease: leaseID)
        wrote(keys: 1, octets: data.count + aliveKey.utf8.count)
    }

    /// Writes this POP's votes that changed (or all of them, under a new lease).
    func publish(all: Bool) throws {
        // Taken out of `unpublished` now: a verdict changing while these are written is pending
        // again, not lost when they are done.
        let (leaseID, pending) = lock.withLock { () -> (Int64, [(String, Vote)]) in
            guard lease != 0 else { return (0, []) }
            let names = all ? Set(own.keys) : unpublished
            let now = Date().timeIntervalSince1970
            var out: [(String, Vote)] = []
            for n in names {
                guard var v = own[n] else { continue }
                v.at = now
                own[n] = v
                out.append((n, v))
                unpublished.remove(n)
            }
            return (lease, out)
        }
        guard leaseID != 0 else { return }
        let enc = JSONEncoder()
        var done = 0
        do {
            // Up to `voteBatch` votes per transaction (etcd's --max-txn-ops is 128 by default).
            while done < pending.count {
                let batch = lock.withLock { voteBatch }
                let chunk = pending[done..<min(pending.count, done + batch)]
                let items = try chunk.map { (voteKey($0.0), Array(try enc.encode($0.1))) }
                do {
                    try client.putMany(items, lease: leaseID)
                } catch let f as EtcdClient.Failure where f.description.contains("too many operations") && batch > 1 {
                    logger.notice("cluster: etcd takes fewer operations per transaction (\(f)); writing votes one at a time")
                    lock.withLock { voteBatch = 1 }
                    continue
                }
                done += chunk.count
                wrote(keys: items.count, octets: items.reduce(0) { $0 + $1.0.utf8.count + $1.1.count })
            }
        } catch {
            lock.withLock { for (n, _) in pending[done...] where own[n] != nil { unpublished.insert(n) } }
            throw error
        }
    }

    /// Counts one request that wrote `keys` keys (`octets` of keys and values, for votes and heartbeats).
    func wrote(keys: Int, octets: Int = 0) {
        lock.withLock {
            writes += keys
            writeRequests += 1
            writeBytes += octets
        }
    }

    /// Votes per transaction (1 after etcd refused a batch); under `lock`.
    var voteBatch = 100

    func load(_ kvs: [EtcdClient.KeyValue], revision rev: Int64) {
        lock.withLock {
            votes = [:]
            heartbeats = [:]
            popRTT = [:]
            overrideRecords = [:]
        }
        let withdrawnBefore = lock.withLock { () -> Set<String> in
            defer { clusterWithdrawn = [] }
            return clusterWithdrawn
        }
        var external: [String] = []
        apply(kvs.map { .put($0) }, revision: rev, externalSeen: &external, live: false)
        // External input that vanished while we were away: back to auto.
        for name in lock.withLock({ knownExternal }) where !external.contains(name) {
            onExternal(name, nil, "cleared", nil)
        }
        lock.withLock { knownExternal = Set(external) }
        for proto in withdrawnBefore.subtracting(lock.withLock { clusterWithdrawn }) { onAnycast(proto, nil) }
    }

    var knownExternal: Set<String> = []

    func apply(_ events: [EtcdClient.WatchEvent], revision rev: Int64) {
        var seen: [String] = []
        apply(events, revision: rev, externalSeen: &seen, live: true)
        lock.withLock { knownExternal.formUnion(seen) }
    }

    /// `live`: events from the watch, as they happen (not the initial read, whose heartbeats may
    /// be a heartbeat old).
    func apply(_ events: [EtcdClient.WatchEvent], revision rev: Int64, externalSeen: inout [String], live: Bool) {
        var overridesChanged = false
        let dec = JSONDecoder()
        for e in events {
            let key: String
            var value: [UInt8]? = nil
            switch e {
            case .put(let kv): key = kv.key; value = kv.value
            case .delete(let k, _): key = k
            }
            guard key.hasPrefix(root) else { continue }
            let parts = key.dropFirst(root.count).split(separator: "/", omittingEmptySubsequences: false)
            switch (parts.first, parts.count) {
            case ("votes"?, 3):
                let endpoint = Self.unescape(parts[1]), pop = Self.unescape(parts[2])
                let vote = value.flatMap { try? dec.decode(Vote.self, from: Data($0)) }
                lock.withLock { votes[endpoint, default: [:]][pop] = vote }
            case ("pops"?, 2):
                let pop = Self.unescape(parts[1])
                let beat = value.flatMap { try? dec.decode(Beat.self, from: Data($0)) }
                var revision: Int64 = 0
                if case .put(let kv) = e { revision = kv.modRevision }
                heard(pop, beat, live: live, revision: revision)
            case ("anycast"?, 3):
                guard Self.unescape(parts[1]) == settings.pop else { continue }
                let proto = Self.unescape(parts[2])
                let withdraw: Bool? = value == nil ? nil : true
                lock.withLock { if withdraw == true { clusterWithdrawn.insert(proto) } else { clusterWithdrawn.remove(proto) } }
                onAnycast(proto, withdraw)
            case ("overrides"?, 3):
                let id = parts[1] + "/" + Self.unescape(parts[2])
                let record = value.flatMap { try? dec.decode(OverrideRecord.self, from: Data($0)) }
                lock.withLock { overrideRecords[id] = record }
                overridesChanged = true
            case ("external"?, 2):
                let endpoint = Self.unescape(parts[1])
                if let r = value.flatMap({ try? dec.decode(ExternalRecord.self, from: Data($0)) }) {
                    externalSeen.append(endpoint)
                    onExternal(endpoint, r.up, r.reason, max(1, r.expiresAt - Date().timeIntervalSince1970))
                } else {
                    onExternal(endpoint, nil, "cleared", nil)
                    lock.withLock { _ = knownExternal.remove(endpoint) }
                }
            default:
                continue
            }
        }
        lock.withLock { revision = max(revision, rev) }
        if overridesChanged { onOverrides(sharedOverrides) }
        recompute()
    }

    /// The overrides every POP applies, from etcd's records.
    package var sharedOverrides: AdminOverrides {
        lock.withLock {
            var o = AdminOverrides()
            for (id, r) in overrideRecords {
                let parts = id.split(separator: "/", maxSplits: 1)
                guard parts.count == 2 else { continue }
                let entry = AdminOverride(state: r.state, weight: r.weight)
                switch parts[0] {
                case "regions": o.regions[String(parts[1])] = entry
                case "pools": o.pools[String(parts[1])] = entry
                case "endpoints": o.endpoints[String(parts[1])] = entry
                default: continue
                }
            }
            return o
        }
    }

    /// A POP's heartbeat (nil: gone). It is fresh from the time this POP received it, or from the
    /// time in it if later: a POP whose clock is behind still counts (its offset is logged); one
    /// whose clock is ahead counts until its lease takes the key away. A heartbeat of this POP's
    /// name written by another process while this one runs: two lodestars share a name (their
    /// votes overwrite each other and count as one), said loudly.
    func heard(_ pop: String, _ beat: Beat?, live: Bool, revision: Int64 = 0) {
        let now = Date().timeIntervalSince1970
        var skew: Double? = nil, conflict: String? = nil
        lock.withLock {
            heartbeats[pop] = beat.map { max($0.at, now) }
            popRTT[pop] = beat?.rtt
            if beat == nil { liveBeats[pop] = nil }
            // A POP heard again (or gone) since the reconnection: once all are, the view is fresh.
            let writtenSince = live && holdRevision != .max && revision > holdRevision
            if (writtenSince || beat == nil) && awaitedBeats.remove(pop) != nil && awaitedBeats.isEmpty { holdUntil = 0 }
            guard let beat, live else { return }
            let offset = beat.at - now
            let mono = lodestar_monotonic()
            if pop == settings.pop {
                // This POP's own clock: the offset is how late etcd delivered it, not skew.
                if beat.id == instance { ownDelay = (-offset, mono) }
                liveBeats[pop] = (beat.host, 0)
                if let id = beat.id, id != instance {
                    let text = "another lodestar (host \(beat.host ?? "?")) writes as pop \(pop) too"
                    if nameConflict == nil || mono - nameConflict!.at > 60 { conflict = text }
                    nameConflict = (text, mono)
                }
            }
            // Judged only from heartbeats that arrived fresh: not in the burst after a
            // reconnection, and only while this POP's own heartbeats come back promptly.
            let steady = connected && mono - reconnectedAt > settings.staleAfter
                && ownDelay.map { $0.seconds < 1 && mono - $0.at < 3 * settings.heartbeat + 1 } == true
            guard pop != settings.pop, steady else {
                if liveBeats[pop] == nil { liveBeats[pop] = (beat.host, 0) }
                return
            }
            liveBeats[pop] = (beat.host, offset)
            if abs(offset) > Self.skewTolerance {
                if !skewWarned.contains(pop) { skew = offset }
                skewWarned.insert(pop)
            } else {
                skewWarned.remove(pop)
            }
        }
        if let skew {
            logger.warning("cluster: pop \(pop)'s clock is \(String(format: "%+.1f", skew)) s off this one's; its votes count from when they arrive",
                           metadata: ["pop": "\(pop)"])
        }
        if let conflict {
            logger.error("cluster: \(conflict): give each POP its own cluster.pop, or their votes count as one",
                         metadata: ["pop": "\(pop)"])
        }
    }

    /// Clock offsets larger than this are logged.
    static let skewTolerance = 5.0
    var skewWarned: Set<String> = []
    /// Each POP's host and clock offset (its time minus ours) at its last heartbeat seen live.
    var liveBeats: [String: (host: String?, clockOffset: Double)] = [:]
    /// Another process heard writing this POP's heartbeat, and when (monotonic).
    var nameConflict: (text: String, at: Double)? = nil

    // MARK: the lease thread: keepalive, votes, re-deciding as votes age

    func leaseLoop() {
        while !isStopped {
            pause(0.25)
            if isStopped { break }
            let now = lodestar_monotonic()
            let (id, keepDue, heartbeatDue, pending, online) = lock.withLock {
                (lease, now - lastKeepAlive >= Double(settings.leaseTTL) / 3, now - lastHeartbeat >= settings.heartbeat,
                 !unpublished.isEmpty, connected)
            }
            do {
                if id != 0 && keepDue {
                    if try client.keepAlive(id) {
                        lock.withLock { lastKeepAlive = now }
                        contact()
                    } else {
                        logger.warning("cluster: the lease on this POP's votes expired; granting a new one and writing them again")
                        lock.withLock { lease = 0 }
                        watch.stop()
                    }
                }
                if id != 0 && online && pending { try publish(all: false) }
                if id != 0 && online && heartbeatDue {
                    lock.withLock { lastHeartbeat = now }
                    try beat()
                }
                if online && settings.compaction > 0 && now - lastCompactAttempt >= settings.compaction {
                    lastCompactAttempt = now
                    compactHistory()
                }
            } catch {
                lost(error)
                // Move the watch too: it may hang on the same dead member.
                watch.stop()
            }
            recompute()
            if settings.rttMean { reportMeanRTT() }
        }
    }

    /// etcd keeps every revision of every key until compacted; heartbeats alone add one per POP
    /// per `heartbeat`, and an uncompacted store reaches its space quota and refuses all writes.
    /// Each interval every POP tries one transaction on the `compaction` key, as Kubernetes' API
    /// servers do: the one whose write wins (the key's version still the one it saw last time)
    /// compacts to the revision it saw one interval before; the others learn the new version.
    /// So the whole deployment compacts once per interval, keeping one to two intervals of
    /// history for watches that reconnect.
    /// A failure here (etcd away, or a user not allowed to compact) is logged and changes nothing
    /// else: the other requests say whether etcd is reachable.
    func compactHistory() {
        struct Record: Encodable { var by: String; var revision: Int64; var at: Double }
        let target = compactRevision
        do {
            let value = Array(try JSONEncoder().encode(Record(by: settings.pop, revision: target, at: Date().timeIntervalSince1970)))
            let r = try client.putIfVersion(root + "compaction", version: compactVersion, value: value)
            compactVersion = r.version
            compactRevision = r.revision
            guard r.won, target > 0 else { return }
            if try client.compact(revision: target) {
                lock.withLock { compactions += 1 }
                logger.info("cluster: compacted etcd's history before revision \(target)", metadata: ["revision": "\(target)"])
            }
        } catch {
            let hint = "\(error)".contains("permission denied")
                ? " (if this user may not compact, set cluster.compaction: 0 and run etcd with --auto-compaction-retention)"
                : ""
            logger.warning("cluster: compacting etcd's history failed: \(error)\(hint)", metadata: ["peer": "\(client.endpoint)"])
        }
    }

    // MARK: this POP's verdicts in, decisions out

    /// The prober's verdicts (nil: not checked any more). Written on transitions only.
    package func localVerdicts(_ verdicts: [Verdict]) {
        lock.withLock {
            for v in verdicts {
                let before = own[v.endpoint]
                if let up = v.up {
                    own[v.endpoint] = Vote(up: up, reason: v.reason, at: Date().timeIntervalSince1970)
                    if before?.up != up || before?.reason != v.reason { unpublished.insert(v.endpoint) }
                } else {
                    own[v.endpoint] = nil
                    unpublished.remove(v.endpoint)
                }
            }
        }
        recompute()
    }

    /// This POP's region RTT excess (from its prober), published with the next heartbeat.
    package func localRTT(_ extra: [String: Double]) {
        lock.withLock { ownRTT = extra }
        if settings.rttMean { reportMeanRTT() }
    }

    /// The mean over the POPs whose heartbeat counts (and this one) of each region's RTT excess.
    func reportMeanRTT() {
        let now = Date().timeIntervalSince1970
        let mean = lock.withLock { () -> [String: Double]? in
            let frozen = holdingView(fallback: fellBack)
            var sums: [String: (Double, Int)] = [:]
            var sources = [ownRTT]
            if !fellBack {
                for (pop, rtt) in popRTT where pop != settings.pop {
                    guard let at = heartbeats[pop], frozen || now - at <= settings.staleAfter else { continue }
                    sources.append(rtt)
                }
            }
            for m in sources { for (r, v) in m { sums[r, default: (0, 0)].0 += v; sums[r, default: (0, 0)].1 += 1 } }
            let mean = sums.mapValues { $0.0 / Double($0.1) }
            guard mean != lastMeanRTT else { return nil }
            lastMeanRTT = mean
            return mean
        }
        if let mean { onRTT(mean) }
    }

    /// Withdraws (or puts back to automatic, nil) an anycast protocol of `pop` for maintenance,
    /// from any POP.
    package func setAnycast(pop: String, proto: String, withdraw: Bool?) throws {
        do {
            let key = anycastKey(pop, proto)
            if withdraw == true {
                struct Record: Encodable { var withdraw: Bool; var by: String; var at: Double }
                try client.put(key, Array(try JSONEncoder().encode(Record(withdraw: true, by: settings.pop, at: Date().timeIntervalSince1970))))
            } else {
                try client.delete(key)
            }
            wrote(keys: 1)
        } catch {
            lost(error)
            throw Unavailable(description: "the cluster's etcd is unreachable (\(error)): the anycast change was not made")
        }
    }

    /// Votes dated by their POP's latest heartbeat when it is newer; a POP whose key is gone
    /// (its lease expired or was revoked) has its votes dropped (under the lock).
    func freshened(_ v: [String: Vote]) -> [String: Vote] {
        var out: [String: Vote] = [:]
        for (pop, vote) in v {
            guard let beat = heartbeats[pop] else { continue }
            var x = vote
            x.at = max(x.at, beat)
            out[pop] = x
        }
        return out
    }

    /// The policy an endpoint is decided by: this POP's verdict alone for a veto endpoint or while
    /// etcd has been away too long, else the configured one.
    func policy(for endpoint: String, fallback: Bool) -> HealthPolicy {
        (fallback || settings.localVeto.contains(endpoint)) ? .local : settings.policy
    }

    /// Decides every endpoint again; tells `onHealth` what changed.
    func recompute() {
        let now = Date().timeIntervalSince1970
        let mono = lodestar_monotonic()
        let changes = lock.withLock { () -> [Verdict] in
            let away = awaySince.map { mono - $0 } ?? 0
            let fallback = !connected && (lastContact == nil || away >= settings.fallbackAfter)
            if fallback != fellBack {
                fellBack = fallback
                if !fallback {
                    logger.notice("cluster: the shared health view decides")
                } else if lastContact != nil {
                    logger.warning("cluster: etcd away for \(Int(away)) s: this POP's own verdicts decide until it is back")
                }
            }
            let frozen = holdingView(fallback: fallback)
            var out: [Verdict] = []
            for endpoint in Set(own.keys).union(votes.keys).union(decided.keys) {
                var all = freshened(votes[endpoint] ?? [:])
                all[settings.pop] = own[endpoint]
                let policy = policy(for: endpoint, fallback: fallback)
                let outcome = Consensus.decide(votes: all, own: settings.pop, policy: policy, quorum: settings.quorum,
                                               staleAfter: settings.staleAfter, now: now, frozen: frozen)
                guard outcome != decided[endpoint] else { continue }
                decided[endpoint] = outcome
                out.append((endpoint, outcome?.up, outcome?.reason ?? "not checked"))
            }
            return out
        }
        if !changes.isEmpty { onHealth(changes) }
    }

    // MARK: shared changes from the admin API

    package struct Unavailable: Error, CustomStringConvertible {
        package var description: String
    }

    /// Sets or clears an override in etcd (compare-and-set on the key: concurrent changes to one
    /// thing from two POPs both land). Throws `Unavailable` when etcd cannot take it: the change
    /// is then not made anywhere, and the caller says so.
    package func setOverride(kind: String, name: String, state: AdminOverride.State??, weight: Double??) throws {
        let key = overrideKey(kind, name)
        for _ in 0..<8 {
            do {
                let current = try client.get(key)
                var r = current.flatMap { try? JSONDecoder().decode(OverrideRecord.self, from: Data($0.value)) }
                    ?? OverrideRecord(state: nil, weight: nil, by: settings.pop, at: 0)
                if let state { r.state = state }
                if let weight { r.weight = weight }
                r.by = settings.pop
                r.at = Date().timeIntervalSince1970
                let value = (r.state == nil && r.weight == nil) ? nil : Array(try JSONEncoder().encode(r))
                if try client.compareAndSet(key, modRevision: current?.modRevision ?? 0, value: value) {
                    lock.withLock { overrideRecords[kind + "/" + name] = value == nil ? nil : r }
                    wrote(keys: 1)
                    contact()
                    onOverrides(sharedOverrides)
                    return
                }
            } catch {
                lost(error)
                throw Unavailable(description: "the cluster's etcd is unreachable (\(error)): the override was not made on any POP")
            }
        }
        throw Unavailable(description: "the override of \(name) kept changing under concurrent writers; try again")
    }

    /// External health input for every POP (nil `up`: back to automatic).
    package func setExternal(endpoint: String, up: Bool?, reason: String, ttl: Double) throws {
        do {
            if let up {
                let r = ExternalRecord(up: up, reason: reason, expiresAt: Date().timeIntervalSince1970 + ttl, by: settings.pop)
                try client.put(externalKey(endpoint), Array(try JSONEncoder().encode(r)))
            } else {
                try client.delete(externalKey(endpoint))
            }
            wrote(keys: 1)
        } catch {
            lost(error)
            throw Unavailable(description: "the cluster's etcd is unreachable (\(error)): the health input was not shared")
        }
    }

    // MARK: status

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
            let frozen = holdingView(fallback: fellBack)
            let eps = Set(own.keys).union(votes.keys).sorted().map { e -> EndpointStatus in
                var all = freshened(votes[e] ?? [:])
                all[settings.pop] = own[e]
                let policy = policy(for: e, fallback: fellBack)
                return EndpointStatus(
                    endpoint: e, up: decided[e]?.up, reason: decided[e]?.reason ?? "not checked",
                    policy: settings.localVeto.contains(e) ? "local (veto)" : (fellBack ? "local (etcd away)" : policy.rawValue),
                    votes: all.sorted { $0.key < $1.key }.map { pop, v in
                        VoteStatus(pop: pop, up: v.up, reason: v.reason, ageSeconds: max(0, now - v.at),
                                   counted: policy == .local ? pop == settings.pop : (pop == settings.pop || frozen || now - v.at <= settings.staleAfter))
                    })
            }
            let provenance = overrideRecords.sorted { $0.key < $1.key }.map { id, r -> OverrideProvenance in
                let parts = id.split(separator: "/", maxSplits: 1).map(String.init)
                return OverrideProvenance(kind: parts.first ?? "", name: parts.last ?? "", by: r.by, at: r.at)
            }
            return Status(pop: settings.pop, connected: connected, etcd: client.endpoint.description, lastError: lastError,
                          viewAgeSeconds: lastContact.map { mono - $0 }, ownVerdictsOnly: fellBack, policy: settings.policy.rawValue,
                          quorum: settings.quorum, revision: revision, writes: writes, writeRequests: writeRequests, writeBytes: writeBytes,
                          compactions: compactions,
                          popNameConflict: nameConflict.flatMap { mono - $0.at <= 120 ? $0.text : nil },
                          pops: heartbeats.sorted { $0.key < $1.key }.map { pop, at in
                              POPStatus(pop: pop, host: liveBeats[pop]?.host, heartbeatAgeSeconds: max(0, now - at),
                                        clockOffsetSeconds: liveBeats[pop]?.clockOffset)
                          },
                          endpoints: eps,
                          overrides: provenance)
        }
    }
}
