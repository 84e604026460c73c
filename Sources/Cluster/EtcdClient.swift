import Foundation
import HTTPClient
package import Settings

/// etcd's v3 API through its JSON gateway (`/v3/...`, the gRPC API's JSON mapping): keys and
/// values in base64, 64-bit numbers as strings. One request per connection, each under a deadline;
/// the endpoints are tried in turn, starting after the last that failed. Blocking: called only on
/// the cluster's own threads.
package final class EtcdClient: @unchecked Sendable {
    package struct KeyValue: Sendable, Equatable {
        package var key: String
        package var value: [UInt8]
        package var modRevision: Int64
        package var lease: Int64
    }

    package typealias Endpoint = EtcdEndpoint

    package struct Failure: Error, CustomStringConvertible {
        package enum Code: Sendable, Equatable {
            /// No answer: connection refused or reset, deadline passed, TLS failed.
            case unreachable
            /// An HTTP answer other than 200.
            case refused
            /// etcd refused the auth token (expired, or unknown to that member).
            case tokenRejected
            /// A transaction over etcd's `--max-txn-ops`.
            case tooManyOperations
            /// The revision asked for was compacted away.
            case compacted
            /// An answer not as etcd's API documents it.
            case malformed
        }

        package var code: Code
        package var description: String
        package init(_ d: String, code: Code = .malformed) {
            description = d
            self.code = code
        }
    }

    let endpoints: [Endpoint]
    let timeout: Double
    let credentials: (user: String, password: String)?
    let tls: TLSSettings
    /// The endpoint to try first, and the auth token, shared by the cluster's threads.
    let lock = NSLock()
    var current = 0
    var token: String? = nil

    package init(
        endpoints: [Endpoint], timeout: Double, credentials: (user: String, password: String)? = nil,
        tls: TLSSettings = TLSSettings()
    ) {
        self.endpoints = endpoints
        self.tls = tls
        self.timeout = timeout
        self.credentials = credentials
    }

    /// The endpoint in use (for logs and /v1/state).
    package var endpoint: Endpoint { lock.withLock { endpoints[current % endpoints.count] } }

    /// Moves to the next endpoint (after a failure).
    package func rotate() { lock.withLock { current = (current + 1) % endpoints.count } }

    // MARK: requests

    /// POSTs `body` to `path` on the current endpoint; the reply's JSON object. A failure to reach
    /// the endpoint rotates to the next one for the next call.
    package func call(_ path: String, _ body: [String: Any], timeout: Double? = nil) throws -> [String: Any] {
        do {
            return try callOnce(path, body, timeout: timeout)
        } catch let f as Failure where f.code == .tokenRejected && credentials != nil {
            // The token expired or the member restarted: authenticate again, once.
            return try callOnce(path, body, timeout: timeout)
        }
    }

    func callOnce(_ path: String, _ body: [String: Any], timeout: Double?) throws -> [String: Any] {
        let ep = endpoint
        let deadline = Date().addingTimeInterval(timeout ?? self.timeout)
        do {
            let c = try connect(ep, deadline)
            try c.send(
                "POST", path, headers: try headers(deadline),
                body: try JSONSerialization.data(withJSONObject: body).map { $0 }, deadline: deadline)
            let r = try c.readResponse(deadline: deadline, limit: 64 << 20)
            let object = (try? JSONSerialization.jsonObject(with: Data(r.body))) as? [String: Any]
            guard r.status == 200, let object else {
                let message =
                    (object?["message"] as? String) ?? (object?["error"] as? String) ?? r.text.prefix(200).description
                var failure = Failure("etcd \(ep) \(path): HTTP \(r.status): \(message)", code: .refused)
                if r.status == 401 || message.contains("invalid auth token") {
                    lock.withLock { token = nil }
                    failure.code = .tokenRejected
                } else if message.contains("too many operations") {
                    failure.code = .tooManyOperations
                } else if message.contains("compacted") {
                    failure.code = .compacted
                }
                throw failure
            }
            return object
        } catch let f as Failure {
            throw f
        } catch {
            rotate()
            throw Failure("etcd \(ep): \(error)", code: .unreachable)
        }
    }

    /// The Authorization header, authenticating first when a user is configured.
    func headers(_ deadline: Date) throws -> [String] {
        var h = ["Content-Type: application/json"]
        guard let credentials else { return h }
        if let t = lock.withLock({ token }) {
            h.append("Authorization: \(t)")
            return h
        }
        let ep = endpoint
        let c = try connect(ep, deadline)
        let body = try JSONSerialization.data(withJSONObject: [
            "name": credentials.user, "password": credentials.password
        ])
        try c.send("POST", "/v3/auth/authenticate", headers: h, body: Array(body), deadline: deadline)
        let r = try c.readResponse(deadline: deadline)
        guard r.status == 200, let o = (try? JSONSerialization.jsonObject(with: Data(r.body))) as? [String: Any],
            let t = o["token"] as? String
        else {
            throw Failure(
                "etcd \(ep): authentication as \(credentials.user) failed: HTTP \(r.status) \(r.text.prefix(200))")
        }
        lock.withLock { token = t }
        h.append("Authorization: \(t)")
        return h
    }

    func connect(_ ep: Endpoint, _ deadline: Date) throws -> HTTPConnection {
        try HTTPConnection(host: ep.host, port: ep.port, deadline: deadline, tls: ep.tls ? tls : nil)
    }

    static func b64(_ s: String) -> String { Data(s.utf8).base64EncodedString() }
    static func b64(_ b: [UInt8]) -> String { Data(b).base64EncodedString() }
    static func unb64(_ s: Any?) -> [UInt8] { (s as? String).flatMap { Data(base64Encoded: $0) }.map(Array.init) ?? [] }
    /// Revisions, versions, counts and TTLs are never near this: a larger (or negative) number
    /// from a broken or lying peer reads as 0, so that no arithmetic on it can trap.
    static let maxNumber: Int64 = 1 << 60

    /// An int64 of etcd's JSON (a decimal string, as the gateway writes them, or a number) within
    /// 0...maxNumber; 0 otherwise.
    static func int(_ v: Any?) -> Int64 {
        let n = id(v)
        return n <= maxNumber ? n : 0
    }

    /// A positive int64 of any size (lease IDs use the whole range); 0 when it is not one.
    static func id(_ v: Any?) -> Int64 {
        if let s = v as? String { return Int64(s).map { $0 > 0 ? $0 : 0 } ?? 0 }
        guard let n = v as? NSNumber else { return 0 }
        // NSNumber's int64Value traps on a double out of range: go through Double first.
        let d = n.doubleValue
        guard d.isFinite, d > 0, d < 9.2e18 else { return 0 }
        return n.int64Value
    }

    /// The end of the range of keys under `prefix` (the prefix with its last octet plus one).
    static func rangeEnd(_ prefix: String) -> [UInt8] {
        var b = Array(prefix.utf8)
        while let last = b.last {
            if last < 0xFF {
                b[b.count - 1] = last + 1
                return b
            }
            b.removeLast()
        }
        return [0]
    }

    package static func keyValue(_ o: [String: Any]) -> KeyValue {
        KeyValue(
            key: String(decoding: unb64(o["key"]), as: UTF8.self), value: unb64(o["value"]),
            modRevision: int(o["mod_revision"]), lease: id(o["lease"]))
    }

    /// Every key under `prefix`, and the store's revision they were read at: `page` keys per
    /// request (etcd answers in one message, which must stay far below its size limits), every
    /// page read at the first page's revision so the whole is one consistent snapshot. A
    /// compaction past that revision while reading starts the read again (at most 3 times).
    package func range(prefix: String, page: Int = 1000) throws -> (revision: Int64, kvs: [KeyValue]) {
        var attempt = 0
        while true {
            do {
                return try rangeOnce(prefix: prefix, page: page)
            } catch let f as Failure where f.code == .compacted && attempt < 3 {
                attempt += 1
            }
        }
    }

    func rangeOnce(prefix: String, page: Int) throws -> (revision: Int64, kvs: [KeyValue]) {
        let end = Self.b64(Self.rangeEnd(prefix))
        var body: [String: Any] = ["key": Self.b64(prefix), "range_end": end, "limit": "\(page)"]
        var revision: Int64 = 0
        var out: [KeyValue] = []
        while true {
            let o = try call("/v3/kv/range", body)
            let list = (o["kvs"] as? [[String: Any]]) ?? []
            if revision == 0 { revision = Self.int((o["header"] as? [String: Any])?["revision"]) }
            out += list.map(Self.keyValue)
            // The next page starts just after the last key (its octets, then a zero octet).
            guard (o["more"] as? Bool) == true, let last = list.last else { return (revision, out) }
            guard out.count <= 10_000_000 else {
                throw Failure("etcd \(endpoint): over 10,000,000 keys under \(prefix)")
            }
            let next = Self.unb64(last["key"]) + [0]
            // Each page must start past the one before: a reply whose last key does not move
            // forward would have the read ask for the same page for ever.
            let from = Self.unb64(body["key"])
            guard next.lexicographicallyPrecedes(from) == false, next != from else {
                throw Failure(
                    "etcd \(endpoint): a range reply whose last key does not advance (more: true); not etcd's API")
            }
            body["key"] = Self.b64(next)
            body["revision"] = "\(revision)"
        }
    }

    /// How many keys are under `prefix` (a linearizable read: it needs etcd's quorum).
    package func count(prefix: String) throws -> Int64 {
        try countAndRevision(prefix: prefix).count
    }

    /// The keys under `prefix` and the store's revision, by a linearizable read: a write with a
    /// higher revision was made after this call.
    package func countAndRevision(prefix: String) throws -> (count: Int64, revision: Int64) {
        let o = try call(
            "/v3/kv/range", ["key": Self.b64(prefix), "range_end": Self.b64(Self.rangeEnd(prefix)), "count_only": true])
        return (Self.int(o["count"]), Self.int((o["header"] as? [String: Any])?["revision"]))
    }

    /// One key (nil when absent).
    package func get(_ key: String) throws -> KeyValue? {
        let o = try call("/v3/kv/range", ["key": Self.b64(key)])
        return ((o["kvs"] as? [[String: Any]]) ?? []).first.map(Self.keyValue)
    }

    /// Writes the key; the store's revision after the write.
    @discardableResult
    package func put(_ key: String, _ value: [UInt8], lease: Int64 = 0) throws -> Int64 {
        var body: [String: Any] = ["key": Self.b64(key), "value": Self.b64(value)]
        if lease != 0 { body["lease"] = "\(lease)" }
        let o = try call("/v3/kv/put", body)
        return Self.int((o["header"] as? [String: Any])?["revision"])
    }

    package func delete(_ key: String) throws {
        _ = try call("/v3/kv/deleterange", ["key": Self.b64(key)])
    }

    /// Puts `value` (or deletes, when nil) only if the key's modification revision is still
    /// `modRevision` (0: the key does not exist); false when another writer came first.
    package func compareAndSet(_ key: String, modRevision: Int64, value: [UInt8]?) throws -> Bool {
        let op: [String: Any] =
            value.map { ["request_put": ["key": Self.b64(key), "value": Self.b64($0)]] }
            ?? ["request_delete_range": ["key": Self.b64(key)]]
        let o = try call(
            "/v3/kv/txn",
            [
                "compare": [
                    ["key": Self.b64(key), "target": "MOD", "result": "EQUAL", "mod_revision": "\(modRevision)"]
                ],
                "success": [op]
            ])
        return (o["succeeded"] as? Bool) == true
    }

    /// Puts every key in one transaction (keys distinct; at most etcd's --max-txn-ops).
    package func putMany(_ items: [(key: String, value: [UInt8])], lease: Int64 = 0) throws {
        if items.count == 1 {
            try put(items[0].key, items[0].value, lease: lease)
            return
        }
        let ops: [[String: Any]] = items.map { item in
            var put: [String: Any] = ["key": Self.b64(item.key), "value": Self.b64(item.value)]
            if lease != 0 { put["lease"] = "\(lease)" }
            return ["request_put": put]
        }
        _ = try call("/v3/kv/txn", ["success": ops])
    }

    /// Puts `value` only if the key's version (how many times it was written since created; 0:
    /// absent) is still `version`. Whether it was, the key's version after the call, and the
    /// store's revision.
    package func putIfVersion(_ key: String, version: Int64, value: [UInt8]) throws -> (
        won: Bool, version: Int64, revision: Int64
    ) {
        let o = try call(
            "/v3/kv/txn",
            [
                "compare": [["key": Self.b64(key), "target": "VERSION", "result": "EQUAL", "version": "\(version)"]],
                "success": [["request_put": ["key": Self.b64(key), "value": Self.b64(value)]]],
                "failure": [["request_range": ["key": Self.b64(key)]]]
            ])
        let revision = Self.int((o["header"] as? [String: Any])?["revision"])
        if (o["succeeded"] as? Bool) == true {
            return (true, version < Self.maxNumber ? version + 1 : version, revision)
        }
        let range = ((o["responses"] as? [[String: Any]])?.first?["response_range"] as? [String: Any]) ?? [:]
        let kv = (range["kvs"] as? [[String: Any]])?.first
        return (false, Self.int(kv?["version"]), revision)
    }

    /// Discards the history of every key before `revision` (etcd-wide: compaction is not per
    /// prefix). False when that was done already (by another POP, or etcd's own auto-compaction).
    @discardableResult
    package func compact(revision: Int64) throws -> Bool {
        do {
            _ = try call("/v3/kv/compaction", ["revision": "\(revision)"])
            return true
        } catch let f as Failure where f.description.contains("compacted") {
            return false
        }
    }

    /// A new lease of `ttl` seconds.
    package func grant(ttl: Int) throws -> Int64 {
        let o = try call("/v3/lease/grant", ["TTL": "\(ttl)"])
        let id = Self.id(o["ID"])
        guard id != 0 else { throw Failure("etcd \(endpoint): lease grant without an ID") }
        return id
    }

    /// Renews the lease; false when it has expired (its keys are gone).
    package func keepAlive(_ id: Int64) throws -> Bool {
        let o = try call("/v3/lease/keepalive", ["ID": "\(id)"])
        let result = o["result"] as? [String: Any] ?? o
        return Self.int(result["TTL"]) > 0
    }

    package func revoke(_ id: Int64) throws {
        _ = try call("/v3/lease/revoke", ["ID": "\(id)"], timeout: 1)
    }

    // MARK: watch

    package enum WatchEvent {
        case put(KeyValue)
        case delete(key: String, modRevision: Int64)
    }

    package enum WatchEnd: Error, CustomStringConvertible {
        /// The revision asked for was compacted away: read everything again.
        case compacted(Int64)
        case failed(String)
        package var description: String {
            switch self {
            case .compacted(let r): return "history compacted up to revision \(r)"
            case .failed(let s): return s
            }
        }
    }

    /// A watch in progress on its own connection; `stop` (from any thread) ends `run`.
    package final class Watch: @unchecked Sendable {
        let lock = NSLock()
        var connection: HTTPConnection? = nil
        var stopped = false

        package init() {}

        package func stop() {
            lock.withLock {
                stopped = true
                connection?.abort()
            }
        }
    }

    /// One line of the watch stream: its events and revision; nil for a line that says nothing
    /// (progress, or not JSON); throws when the watch ended (an error, compaction, cancelled).
    package static func watchMessage(_ line: [UInt8], endpoint ep: String) throws -> ([WatchEvent], Int64)? {
        guard let o = (try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any] else { return nil }
        if let e = o["error"] as? [String: Any] { throw WatchEnd.failed("etcd \(ep) watch: \(e["message"] ?? e)") }
        guard let r = o["result"] as? [String: Any] else { return nil }
        let compacted = Self.int(r["compact_revision"])
        if compacted > 0 { throw WatchEnd.compacted(compacted) }
        if (r["canceled"] as? Bool) == true {
            throw WatchEnd.failed("etcd \(ep) canceled the watch: \(r["cancel_reason"] ?? "")")
        }
        let rev = Self.int((r["header"] as? [String: Any])?["revision"])
        let list: [WatchEvent] = ((r["events"] as? [[String: Any]]) ?? []).map { e in
            let kv = Self.keyValue(e["kv"] as? [String: Any] ?? [:])
            return (e["type"] as? String) == "DELETE" ? .delete(key: kv.key, modRevision: kv.modRevision) : .put(kv)
        }
        return (list, rev)
    }

    /// Watches every key under `prefix` from `revision` on, calling `events` with each batch and
    /// its revision, until the stream ends (throws `WatchEnd`). `idle`: seconds without a byte
    /// after which the stream is taken as dead (etcd sends progress notifications, asked for).
    package func watch(
        prefix: String, from revision: Int64, handle: Watch, idle: Double,
        events: ([WatchEvent], Int64) -> Void
    ) throws {
        let ep = endpoint
        let connectDeadline = Date().addingTimeInterval(timeout)
        let c: HTTPConnection
        do {
            c = try connect(ep, connectDeadline)
        } catch {
            rotate()
            throw WatchEnd.failed("etcd \(ep): \(error)")
        }
        let go = handle.lock.withLock { () -> Bool in
            if handle.stopped { return false }
            handle.connection = c
            return true
        }
        guard go else { throw WatchEnd.failed("stopped") }
        defer { handle.lock.withLock { handle.connection = nil } }
        let body: [String: Any] = [
            "create_request": [
                "key": Self.b64(prefix), "range_end": Self.b64(Self.rangeEnd(prefix)), "start_revision": "\(revision)",
                "progress_notify": true
            ]
        ]
        do {
            try c.send(
                "POST", "/v3/watch", headers: try headers(connectDeadline),
                body: Array(try JSONSerialization.data(withJSONObject: body)),
                deadline: connectDeadline)
            let (status, _) = try c.readHead(deadline: connectDeadline)
            guard status == 200 else { throw WatchEnd.failed("etcd \(ep) watch: HTTP \(status)") }
            var pending: [UInt8] = []
            while true {
                guard let chunk = try c.readBody(deadline: Date().addingTimeInterval(idle)) else {
                    throw WatchEnd.failed("etcd \(ep) ended the watch")
                }
                pending += chunk
                while let nl = pending.firstIndex(of: 0x0A) {
                    let line = Array(pending[..<nl])
                    pending.removeFirst(nl + 1)
                    if let (list, rev) = try Self.watchMessage(line, endpoint: "\(ep)") { events(list, rev) }
                }
                guard pending.count < 64 << 20 else { throw WatchEnd.failed("etcd \(ep): a watch message over 64 MiB") }
            }
        } catch let e as WatchEnd {
            throw e
        } catch {
            if !handle.lock.withLock({ handle.stopped }) { rotate() }
            throw WatchEnd.failed("etcd \(ep) watch: \(error)")
        }
    }
}
