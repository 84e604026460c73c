import Anycast
import DNSWire
import Engine
import Foundation
import Health
import Logging
package import NIOHTTP1

/// Routing: a request's method and path to its handler, the bodies' validation.
extension AdminServer {
    /// Why a request is refused before it is routed, if it is: its token, its Host, its Origin,
    /// and for a POST its Content-Type.
    package func refusal(_ head: HTTPRequestHead, control: Bool = false) -> Response? {
        // /health, /ready and /metrics are read-only and say nothing secret: orchestrators, load
        // balancers and Prometheus ask them without the token (as CoreDNS's health and ready plugins).
        let probe = (head.method == .GET || head.method == .HEAD) && Self.probePaths.contains(head.uri)
        // The control socket's file permissions decided who connected.
        if let token, !probe, !control {
            // The scheme is case-insensitive (RFC 9110 §11.1); the token is compared in constant time.
            let header = head.headers["authorization"].first ?? ""
            let scheme = header.prefix(7).lowercased()
            let given = Array(header.dropFirst(min(7, header.count)).utf8)
            guard scheme == "bearer ", Self.constantTimeEqual(given, Array(token.utf8)) else {
                return Self.error(.unauthorized, "a bearer token is required")
            }
        }
        for host in head.headers["host"] where !Self.hostAllowed(host) {
            return Self.error(
                .forbidden, "Host \"\(host)\" is not this API (only an address or localhost; DNS rebinding)")
        }
        for origin in head.headers["origin"] where !originAllowed(origin) {
            return Self.error(.forbidden, "Origin \"\(origin)\" is not this API: cross-site requests are refused")
        }
        if head.method == .POST {
            let type = (head.headers["content-type"].first ?? "").split(separator: ";").first?
                .trimmingCharacters(in: .whitespaces).lowercased()
            guard type == "application/json" else {
                return Self.error(.unsupportedMediaType, "a POST needs Content-Type: application/json")
            }
            // Without a token, the TCP listener takes no change: on loopback any local account
            // reaches it. Changes go through the control socket (its permissions decide who).
            if token == nil && !control {
                return Self.error(
                    .forbidden,
                    """
                    changes over TCP need admin.token-file; use the control socket (admin.socket), as lodestar ctl does
                    """)
            }
        }
        return nil
    }

    /// The paths answered without the token.
    static let probePaths: Set<String> = ["/health", "/ready", "/metrics"]

    /// Compares without stopping at the first difference: the time taken does not tell how much
    /// of a guessed token was right.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var diff = UInt8(truncatingIfNeeded: a.count ^ b.count)
        for i in 0..<b.count { diff |= (i < a.count ? a[i] : 0) ^ b[i] }
        return diff == 0
    }

    /// A Host naming an address (v4, or v6 in brackets) or localhost, with or without a port:
    /// a DNS rebinding page reaches us under its own domain name, which this refuses.
    static func hostAllowed(_ host: String) -> Bool {
        var h = host.lowercased()
        if h.hasPrefix("[") {
            guard let close = h.firstIndex(of: "]") else { return false }
            let inner = String(h[h.index(after: h.startIndex)..<close])
            let rest = h[h.index(after: close)...]
            return IPAddress.parse(inner) != nil
                && (rest.isEmpty || (rest.hasPrefix(":") && Int(rest.dropFirst()) != nil))
        }
        if let colon = h.lastIndex(of: ":") {
            guard Int(h[h.index(after: colon)...]) != nil else { return false }
            h = String(h[..<colon])
        }
        return h == "localhost" || IPAddress.parse(h) != nil
    }

    /// An Origin of this API itself (a page it served, were it to serve any): http://HOST:PORT
    /// for the listen address, or loopback names of it.
    func originAllowed(_ origin: String) -> Bool {
        guard let address else { return false }
        let o = origin.lowercased()
        let port = ":\(address.port)"
        let hosts = [address.host.contains(":") ? "[\(address.host)]" : address.host, "localhost", "127.0.0.1", "[::1]"]
        return hosts.contains { o == "http://\($0)\(port)" || o == "https://\($0)\(port)" }
    }

    package func handle(method: HTTPMethod, uri: String, headers: HTTPHeaders, body: [UInt8]) -> Response {
        let parts = uri.split(separator: "?", maxSplits: 1)
        let path = String(parts.first ?? "")
        var query: [String: String] = [:]
        if parts.count == 2 {
            for pair in parts[1].split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1).map {
                    String($0).removingPercentEncoding ?? String($0)
                }
                if kv.count == 2 { query[kv[0]] = kv[1] }
            }
        }
        // Each segment percent-decoded on its own (a name may hold `%2F`, `%20`, UTF-8).
        let raw = path.split(separator: "/").map(String.init)
        let decoded = raw.map { $0.removingPercentEncoding }
        guard decoded.allSatisfy({ $0 != nil }) else {
            return Self.error(.badRequest, "a bad percent-encoding in the path")
        }
        let segments = decoded.map { $0! }
        switch (method, segments) {
        case (.GET, ["health"]), (.HEAD, ["health"]):
            return Response(status: .ok, body: "OK\n", contentType: "text/plain; charset=utf-8")
        case (.GET, ["ready"]), (.HEAD, ["ready"]):
            let r = server.readiness
            return Response(
                status: r.ready ? .ok : .serviceUnavailable, body: r.ready ? "OK\n" : "\(r.reason)\n",
                contentType: "text/plain; charset=utf-8")
        case (.GET, ["metrics"]):
            return Response(status: .ok, body: metrics(), contentType: "text/plain; version=0.0.4")
        case (.GET, ["v1", "status"]):
            return Self.json(status())
        case (.GET, ["v1", "state"]):
            return Self.json(state())
        case (.POST, ["v1", "reload"]):
            // No body but an empty object: `force` goes in the query (`?force=true`).
            let text = String(decoding: body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard text.isEmpty || text == "{}" else {
                return Self.error(.badRequest, "reload takes no body: use /v1/reload?force=true to force it")
            }
            switch server.reload(force: query["force"] == "true" || query["force"] == "1") {
            case .success(let g): return Self.json(["result": "reloaded", "generation": "\(g)"])
            case .failure(let e): return Self.json(["result": "failed", "error": "\(e)"], status: .unprocessableEntity)
            }
        case (.GET, ["v1", "explain"]):
            guard let name = query["name"], let client = query["client"] else {
                return Self.error(.badRequest, "explain needs name and client (type is optional)")
            }
            do {
                return Self.json(
                    try Explainer.explain(server.store.current, name: name, type: query["type"] ?? "A", client: client))
            } catch {
                return Self.error(.badRequest, "\(error)")
            }
        case (.GET, ["v1", "anycast"]):
            guard let a = server.anycast else { return Self.error(.notFound, "anycast is not configured") }
            return Self.json(a.status())
        case (.POST, let s) where s.count == 3 && s[0] == "v1" && s[1] == "anycast":
            guard let a = server.anycast else { return Self.error(.notFound, "anycast is not configured") }
            let b: AnycastBody
            switch AnycastBody.decode(body) {
            case .success(let v): b = v
            case .failure(let e): return Self.error(.badRequest, e.description)
            }
            do {
                guard try server.shared.setAnycast(proto: s[2], withdraw: b.withdraw, pop: b.pop) else {
                    return Self.error(.notFound, "no anycast protocol named \(s[2])")
                }
            } catch {
                return Self.failure(error)
            }
            return Self.json(a.status())
        case (.POST, let s) where s.count == 3 && s[0] == "v1" && s[1] == "health":
            return external(name: s[2], body: body)
        case (.POST, let s) where s.count == 3 && s[0] == "v1":
            guard let kind = OverrideKind(rawValue: s[1]) else {
                return Self.error(.notFound, "unknown path \(path)")
            }
            return override(kind, name: s[2], body: body)
        case (.GET, _), (.POST, _):
            return Self.error(.notFound, "unknown path \(path)")
        default:
            return Self.error(.methodNotAllowed, "use GET or POST")
        }
    }

    func override(_ kind: OverrideKind, name: String, body: [UInt8]) -> Response {
        let b: OverrideBody
        switch OverrideBody.decode(body) {
        case .success(let v): b = v
        case .failure(let e): return Self.error(.badRequest, e.description)
        }
        do {
            try server.shared.setOverride(kind, name: name, state: b.state, weight: b.weight)
            server.flushState()
        } catch {
            return Self.failure(error)
        }
        return Self.json(state())
    }

    /// A refused change: its code as the HTTP status.
    static func failure(_ error: Error) -> Response {
        guard let e = error as? SharedStateError else { return Self.error(.internalServerError, "\(error)") }
        switch e.code {
        case .notFound: return Self.error(.notFound, e.description)
        case .invalid: return Self.error(.badRequest, e.description)
        case .unavailable: return Self.error(.serviceUnavailable, e.description)
        }
    }

    func external(name: String, body: [UInt8]) -> Response {
        let b: ExternalBody
        switch ExternalBody.decode(body) {
        case .success(let v): b = v
        case .failure(let e): return Self.error(.badRequest, e.description)
        }
        let (up, reason) = (b.up, b.reason)
        do {
            guard
                try server.shared.setExternal(
                    endpoint: name, up: up, reason: "\(reason) (admin API)",
                    ttl: b.ttl ?? server.externalStaleAfter)
            else {
                return Self.error(.notFound, "no endpoint named \(name)")
            }
        } catch {
            return Self.failure(error)
        }
        logger.notice("external health: \(name) → \(up.map { $0 ? "up" : "down" } ?? "auto") (\(reason))")
        return Self.json(state())
    }
}
