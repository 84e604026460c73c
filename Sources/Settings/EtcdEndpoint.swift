import Foundation

/// One etcd member: `http://HOST:PORT` or `https://HOST:PORT`.
package struct EtcdEndpoint: Sendable, Equatable, CustomStringConvertible {
    package var host: String
    package var port: Int
    package var tls = false
    package var description: String {
        let scheme = tls ? "https" : "http"
        return host.contains(":") ? "\(scheme)://[\(host)]:\(port)" : "\(scheme)://\(host):\(port)"
    }

    package init(host: String, port: Int, tls: Bool = false) {
        self.host = host
        self.port = port
        self.tls = tls
    }

    /// `http://HOST:PORT` or `https://HOST:PORT` (HOST an address, or localhost).
    package static func parse(_ text: String) -> EtcdEndpoint? {
        let tls = text.hasPrefix("https://")
        guard tls || text.hasPrefix("http://") else { return nil }
        var rest = String(text.dropFirst(tls ? 8 : 7))
        if rest.hasSuffix("/") { rest.removeLast() }
        var host: String
        var portText: Substring
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { return nil }
            host = String(rest[rest.index(after: rest.startIndex)..<close])
            let after = rest[rest.index(after: close)...]
            guard after.hasPrefix(":") else { return nil }
            portText = after.dropFirst()
        } else {
            guard let colon = rest.lastIndex(of: ":") else { return nil }
            host = String(rest[..<colon])
            portText = rest[rest.index(after: colon)...]
        }
        if host == "localhost" { host = "127.0.0.1" }
        guard let port = Int(portText), (1...65535).contains(port), !host.isEmpty else { return nil }
        var probe = in6_addr()
        guard inet_pton(host.contains(":") ? AF_INET6 : AF_INET, host, &probe) == 1 else { return nil }
        return EtcdEndpoint(host: host, port: port, tls: tls)
    }
}
