/// One health check of one endpoint, as configured: where to probe, how, and how often.
public struct CheckSpec: Sendable, Equatable, Hashable {
    public enum Kind: String, Sendable, Equatable, Hashable, CaseIterable {
        case tcp, http, https, dns
    }

    public var kind: Kind
    /// The address probed: the check's `address`, else the endpoint's `probe`, else its answer address.
    public var address: String
    public var port: Int
    /// Seconds between the starts of two checks, and the deadline of one.
    public var interval: Double = 10
    public var timeout: Double = 5
    /// Each check starts up to `jitter × interval` later than due, spreading load on the origins.
    public var jitter: Double = 0.1
    public var policy = CheckPolicy()
    /// The local address probes are sent from (a POP with several), or nil for the kernel's choice.
    public var source: String? = nil
    // HTTP and HTTPS.
    public var path = "/"
    /// The Host header (and the TLS server name unless `sni` is set); default the address.
    public var host: String? = nil
    public var sni: String? = nil
    /// Status codes that pass (inclusive ranges); default 200–399 (Route 53: 2xx and 3xx).
    public var expectStatus: [ClosedRange<Int>] = [200...399]
    /// A substring the first `bodyLimit` bytes of the response body must contain.
    public var expectBody: String? = nil
    /// Certificate validation (chain, dates, name), on by default.
    public var verifyTLS = true
    /// PEM file of trust roots used instead of the system's.
    public var caFile: String? = nil
    /// The check fails when the certificate expires in fewer days than this (0: only when expired).
    public var certMinDays: Double = 0
    // DNS.
    public var query: String = "."
    public var qtype: UInt16 = 6
    /// Rcodes that pass (default NOERROR).
    public var expectRcode: [UInt8] = [0]
    /// The reply must carry at least one answer record.
    public var expectAnswer = false

    public static let bodyLimit = 4096

    public init(kind: Kind, address: String, port: Int) {
        self.kind = kind
        self.address = address
        self.port = port
    }

    /// `http://192.0.2.1:80/health`, `tcp://[2001:db8::1]:443`, `dns://127.0.0.1:53/example.com/SOA`.
    public var target: String {
        let a = address.contains(":") ? "[\(address)]" : address
        switch kind {
        case .tcp: return "tcp://\(a):\(port)"
        case .http, .https: return "\(kind.rawValue)://\(a):\(port)\(path)"
        case .dns: return "dns://\(a):\(port)/\(query)"
        }
    }
}
