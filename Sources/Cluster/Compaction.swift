import CLodestarSys
import Foundation
import Logging
import Settings

/// etcd keeps every revision of every key until compacted; heartbeats alone add one per POP
/// per `heartbeat`, and an uncompacted store reaches its space quota and refuses all writes.
/// Each interval every POP tries one transaction on the `compaction` key, as Kubernetes' API
/// servers do: the one whose write wins (the key's version still the one it saw last time)
/// compacts to the revision it saw one interval before; the others learn the new version.
/// So the whole deployment compacts once per interval, keeping one to two intervals of
/// history for watches that reconnect.
struct Compaction {
    /// The `compaction` key's version last seen.
    var version: Int64 = 0
    /// The store's revision seen at the last attempt: what the next winner compacts to.
    var revision: Int64 = 0
    /// When that was (monotonic).
    var lastAttempt = lodestar_monotonic()
}

extension ClusterController {
    /// One attempt (on the lease thread). A failure here (etcd away, or a user not allowed to
    /// compact) is logged and changes nothing else: the other requests say whether etcd is reachable.
    func compactHistory() {
        struct Record: Encodable {
            var by: String
            var revision: Int64
            var at: Double
        }
        let target = compaction.revision
        do {
            let value = Array(
                try JSONEncoder().encode(Record(by: settings.pop, revision: target, at: Date().timeIntervalSince1970)))
            let r = try client.putIfVersion(keys.compaction, version: compaction.version, value: value)
            compaction.version = r.version
            compaction.revision = r.revision
            guard r.won, target > 0 else { return }
            if try client.compact(revision: target) {
                lock.withLock { compactions += 1 }
                logger.info(
                    "cluster: compacted etcd's history before revision \(target)", metadata: ["revision": "\(target)"])
            }
        } catch {
            let hint =
                "\(error)".contains("permission denied")
                ? " (if this user may not compact, set cluster.compaction: 0 and run etcd with --auto-compaction-retention)"
                : ""
            logger.warning(
                "cluster: compacting etcd's history failed: \(error)\(hint)", metadata: ["peer": "\(client.endpoint)"])
        }
    }
}
