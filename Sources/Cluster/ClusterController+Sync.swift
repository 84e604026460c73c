import CLodestarSys
import Foundation
package import Health
import Logging
import Settings

/// The sync thread: reads everything, then watches from that revision; applies what it hears.
extension ClusterController {
    func syncLoop() {
        var backoff = 0.2
        var delivered = false
        // The revision the watch resumes from after a reconnection (0: read everything first).
        var next: Int64 = 0
        while !isStopped {
            do {
                try ensureLease()
                // The store's revision now, from a linearizable read: etcd has a quorum again (a
                // watch alone does not say so).
                let regained: Int64
                if next == 0 {
                    let (rev, kvs) = try client.range(prefix: keys.root)
                    load(kvs, revision: rev)
                    next = rev &+ 1  // EtcdClient.int: at most 2^60
                    regained = rev
                } else {
                    regained = try client.countAndRevision(prefix: keys.root).revision
                }
                contact()
                // Heartbeats written after this revision were written after etcd came back.
                lock.withLock {
                    link.regained(revision: regained)
                    watchStartedAt = lodestar_monotonic()
                }
                delivered = false
                try client.watch(prefix: keys.root, from: next, handle: watch, idle: 3600) { events, rev in
                    guard !events.isEmpty else { return }
                    // The back-off starts over once a watch works, not when a request did: a
                    // watch failing as soon as it starts must not be retried in a tight loop.
                    delivered = true
                    backoff = 0.2
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
                if !delivered {
                    pause(backoff * Double.random(in: 0.8...1.2))
                    backoff = min(backoff * 2, 5)
                }
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
            book.republishAll()
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

    func load(_ kvs: [EtcdClient.KeyValue], revision rev: Int64) {
        lock.withLock {
            _ = book.apply(.forgetShared, now: Date().timeIntervalSince1970)
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
            health.external(endpoint: name, up: nil, reason: "cleared", ttl: 0)
        }
        lock.withLock { knownExternal = Set(external) }
        for proto in withdrawnBefore.subtracting(lock.withLock { clusterWithdrawn }) {
            anycast.anycast(proto: proto, withdraw: nil)
        }
    }

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
            case .put(let kv):
                key = kv.key
                value = kv.value
            case .delete(let k, _): key = k
            }
            switch keys.parse(key) {
            case .vote(let endpoint, let pop)?:
                let vote = value.flatMap { try? dec.decode(Vote.self, from: Data($0)) }
                lock.withLock {
                    _ = book.apply(.vote(endpoint: endpoint, pop: pop, vote), now: Date().timeIntervalSince1970)
                }
            case .heartbeat(let pop)?:
                let beat = value.flatMap { try? dec.decode(Beat.self, from: Data($0)) }
                var revision: Int64 = 0
                if case .put(let kv) = e { revision = kv.modRevision }
                heard(pop, beat, live: live, revision: revision)
            case .anycast(let pop, let proto)?:
                guard pop == settings.pop else { continue }
                let withdraw: Bool? = value == nil ? nil : true
                lock.withLock {
                    if withdraw == true { clusterWithdrawn.insert(proto) } else { clusterWithdrawn.remove(proto) }
                }
                anycast.anycast(proto: proto, withdraw: withdraw)
            case .override(let kind, let name)?:
                let id = kind + "/" + name
                var record = value.flatMap { try? dec.decode(OverrideRecord.self, from: Data($0)) }
                // Held to what the admin API accepts: another writer of the prefix (or a broken
                // one) gets no weight of 1e308 and no kind the board does not know.
                let weightOK = record?.weight.map { $0.isFinite && (0...1_000_000).contains($0) } ?? true
                if value != nil && (record == nil || !weightOK || OverrideKind(rawValue: kind) == nil) {
                    logger.warning(
                        "cluster: the override \(id) in etcd is not one the admin API would make (by \(record?.by ?? "?")); ignored",
                        metadata: ["peer": "\(client.endpoint)"])
                    record = nil
                }
                lock.withLock { overrideRecords[id] = record }
                overridesChanged = true
            case .external(let endpoint)?:
                if let r = value.flatMap({ try? dec.decode(ExternalRecord.self, from: Data($0)) }) {
                    externalSeen.append(endpoint)
                    health.external(
                        endpoint: endpoint, up: r.up, reason: r.reason,
                        ttl: max(1, r.expiresAt - Date().timeIntervalSince1970))
                } else {
                    health.external(endpoint: endpoint, up: nil, reason: "cleared", ttl: 0)
                    lock.withLock { _ = knownExternal.remove(endpoint) }
                }
            case nil:
                continue
            }
        }
        lock.withLock { revision = max(revision, rev) }
        if overridesChanged { health.sharedOverrides(sharedOverrides) }
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
        var skew: Double? = nil
        var conflict: String? = nil
        lock.withLock {
            _ = book.apply(.heartbeat(pop: pop, at: beat.map { max($0.at, now) }), now: now)
            popRTT[pop] = beat?.rtt
            if beat == nil { liveBeats[pop] = nil }
            // A POP heard again (or gone) since the reconnection: once all are, the view is fresh.
            link.heard(pop: pop, gone: beat == nil, live: live, revision: revision)
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
            let steady =
                link.settled(now: mono)
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
            logger.warning(
                "cluster: pop \(pop)'s clock is \(String(format: "%+.1f", skew)) s off this one's; its votes count from when they arrive",
                metadata: ["pop": "\(pop)"])
        }
        if let conflict {
            logger.error(
                "cluster: \(conflict): give each POP its own cluster.pop, or their votes count as one",
                metadata: ["pop": "\(pop)"])
        }
    }
}
