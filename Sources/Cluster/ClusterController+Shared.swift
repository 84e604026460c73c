import Foundation
package import Health
import Logging
import Settings

/// The cluster as the server's shared state: overrides, external input and anycast maintenance
/// written to etcd (every POP applies them from its watch, this one as well); this POP's
/// verdicts become votes.
extension ClusterController: SharedState {
    package func setOverride(_ kind: OverrideKind, name: String, state: AdminOverride.State??, weight: Double??) throws
    {
        guard health.knows(kind, name) else {
            throw SharedStateError(.notFound, "no \(kind.rawValue.dropLast()) named \(name)")
        }
        try writeOverride(kind: kind.rawValue, name: name, state: state, weight: weight)
        let s = state.map { $0?.rawValue ?? "auto" } ?? "unchanged"
        let w = weight.map { $0.map { "\($0)" } ?? "configured" } ?? "unchanged"
        logger.notice("admin: \(kind.rawValue) \(name) → state \(s), weight \(w) (shared through the cluster)")
    }

    package func setExternal(endpoint: String, up: Bool?, reason: String, ttl: Double) throws -> Bool {
        guard health.knows(.endpoints, endpoint) else { return false }
        try writeExternal(endpoint: endpoint, up: up, reason: reason, ttl: ttl)
        return true
    }

    package func setAnycast(proto: String, withdraw: Bool?, pop: String?) throws -> Bool {
        let target = pop ?? settings.pop
        // This POP's protocols are checked here; another POP's are its own business.
        if target == settings.pop && !anycast.hasAnycast(proto: proto) { return false }
        try writeAnycast(pop: target, proto: proto, withdraw: withdraw)
        return true
    }

    /// Sets or clears an override in etcd (compare-and-set on the key: concurrent changes to one
    /// thing from two POPs both land). Throws `SharedStateError.unavailable` when etcd cannot take it: the change
    /// is then not made anywhere, and the caller says so.
    func writeOverride(kind: String, name: String, state: AdminOverride.State??, weight: Double??) throws {
        let key = keys.override(kind, name)
        for _ in 0..<8 {
            do {
                let current = try client.get(key)
                var r =
                    current.flatMap { try? JSONDecoder().decode(OverrideRecord.self, from: Data($0.value)) }
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
                    health.sharedOverrides(sharedOverrides)
                    return
                }
            } catch {
                lost(error)
                throw SharedStateError(
                    .unavailable, "the cluster's etcd is unreachable (\(error)): the override was not made on any POP")
            }
        }
        throw SharedStateError(
            .unavailable, "the override of \(name) kept changing under concurrent writers; try again")
    }

    /// External health input for every POP (nil `up`: back to automatic).
    func writeExternal(endpoint: String, up: Bool?, reason: String, ttl: Double) throws {
        do {
            if let up {
                let r = ExternalRecord(
                    up: up, reason: reason, expiresAt: Date().timeIntervalSince1970 + ttl, by: settings.pop)
                try client.put(keys.external(endpoint), Array(try JSONEncoder().encode(r)))
            } else {
                try client.delete(keys.external(endpoint))
            }
            wrote(keys: 1)
        } catch {
            lost(error)
            throw SharedStateError(
                .unavailable, "the cluster's etcd is unreachable (\(error)): the health input was not shared")
        }
    }

    /// Withdraws (or puts back to automatic, nil) an anycast protocol of `pop` for maintenance,
    /// from any POP.
    func writeAnycast(pop: String, proto: String, withdraw: Bool?) throws {
        do {
            let key = keys.anycast(pop, proto)
            if withdraw == true {
                struct Record: Encodable {
                    var withdraw: Bool
                    var by: String
                    var at: Double
                }
                try client.put(
                    key,
                    Array(
                        try JSONEncoder().encode(
                            Record(withdraw: true, by: settings.pop, at: Date().timeIntervalSince1970))))
            } else {
                try client.delete(key)
            }
            wrote(keys: 1)
        } catch {
            lost(error)
            throw SharedStateError(
                .unavailable, "the cluster's etcd is unreachable (\(error)): the anycast change was not made")
        }
    }
}
