public import Protection
public import Steering

/// What the query engine needs from the configuration, fixed per snapshot.
public struct EngineOptions: Sendable {
    /// NSID payload (RFC 5001) returned when a query asks for it; empty disables NSID.
    public var nsid: [UInt8] = []
    /// TXT answer for `id.server.`/`hostname.bind.` in class CH; nil refuses those queries.
    public var identity: String? = nil
    /// TXT answer for `version.server.`/`version.bind.` in class CH; nil refuses those queries.
    public var version: String? = nil
    /// The largest UDP response we send (RFC 6891 §6.2.5); also what we advertise.
    public var maxUDPPayload: Int = 1232
    /// Who may ask for IXFR over UDP (answered with the SOA); the TCP transfer path checks the same list.
    public var transferAllow: [Prefix] = []
    /// DNS cookies (RFC 7873, RFC 9018 server cookies) under this secret; nil: the COOKIE option is
    /// ignored as an unknown one.
    public var cookieSecret: CookieSecret? = nil

    public init() {}
}

/// How a query arrived: it decides size limits and whether transfers are possible.
public enum Transport: Sendable {
    case udp
    case tcp
}
