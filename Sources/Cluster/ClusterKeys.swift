import Foundation

/// Where everything lives in etcd, under the deployment's prefix (one deployment per prefix):
///
/// - `votes/ENDPOINT/POP`: a POP's verdict on an endpoint (under its lease);
/// - `pops/POP`: its heartbeat (under its lease);
/// - `overrides/{regions|pools|endpoints}/NAME`: an operator's override, shared;
/// - `external/ENDPOINT`: external health input, shared;
/// - `anycast/POP/PROTOCOL`: a POP's anycast protocol withdrawn for maintenance;
/// - `compaction`: who compacted the history last, and to which revision.
///
/// Names are escaped (`%` and `/`), so that a name holding a slash stays one path segment.
package struct ClusterKeys: Sendable, Equatable {
    /// The prefix, ending in `/`.
    package let root: String
    /// This POP's name.
    package let pop: String

    package init(prefix: String, pop: String) {
        root = prefix.hasSuffix("/") ? prefix : prefix + "/"
        self.pop = pop
    }

    package static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: "/", with: "%2F")
    }

    package static func unescape(_ s: Substring) -> String {
        s.replacingOccurrences(of: "%2F", with: "/").replacingOccurrences(of: "%25", with: "%")
    }

    /// This POP's vote on an endpoint.
    package func vote(_ endpoint: String) -> String { root + "votes/" + Self.escape(endpoint) + "/" + Self.escape(pop) }
    package func override(_ kind: String, _ name: String) -> String {
        root + "overrides/" + kind + "/" + Self.escape(name)
    }
    package func external(_ endpoint: String) -> String { root + "external/" + Self.escape(endpoint) }
    /// This POP's heartbeat.
    package var alive: String { root + "pops/" + Self.escape(pop) }
    package func anycast(_ pop: String, _ proto: String) -> String {
        root + "anycast/" + Self.escape(pop) + "/" + Self.escape(proto)
    }
    package var compaction: String { root + "compaction" }

    /// What a key under the prefix is.
    package enum Key: Sendable, Equatable {
        case vote(endpoint: String, pop: String)
        case heartbeat(pop: String)
        case override(kind: String, name: String)
        case external(endpoint: String)
        case anycast(pop: String, proto: String)
    }

    /// The key's meaning; nil for keys outside the prefix or of no known shape.
    package func parse(_ key: String) -> Key? {
        guard key.hasPrefix(root) else { return nil }
        let parts = key.dropFirst(root.count).split(separator: "/", omittingEmptySubsequences: false)
        switch (parts.first, parts.count) {
        case ("votes"?, 3): return .vote(endpoint: Self.unescape(parts[1]), pop: Self.unescape(parts[2]))
        case ("pops"?, 2): return .heartbeat(pop: Self.unescape(parts[1]))
        case ("overrides"?, 3): return .override(kind: String(parts[1]), name: Self.unescape(parts[2]))
        case ("external"?, 2): return .external(endpoint: Self.unescape(parts[1]))
        case ("anycast"?, 3): return .anycast(pop: Self.unescape(parts[1]), proto: Self.unescape(parts[2]))
        default: return nil
        }
    }
}
