import Config
package import Engine
import Protection

extension Config {
    /// Options the query engine reads.
    package var engineOptions: EngineOptions {
        var o = EngineOptions()
        o.transferAllow = transferAllow
        o.nsid = Array((nsid ?? "").utf8)
        o.identity = identity
        o.version = version
        o.cookieSecret = cookies ? (cookieSecret ?? Self.processCookieSecret) : nil
        return o
    }

    /// What the listeners read per snapshot.
    package var listenerOptions: ListenerOptions {
        var o = ListenerOptions()
        o.answerCache = answerCache
        o.tcpIdleTimeout = tcpIdleTimeout
        o.tcpMaxConnections = tcpMaxConnections
        o.tcpMaxConnectionsPerClient = tcpMaxConnectionsPerClient
        o.tcpMessageTimeout = tcpMessageTimeout
        o.transferConcurrency = transferConcurrency
        o.rateLimit = rateLimit
        o.rateLimitExempt = rateLimitExempt
        o.proxyAllow = proxyAllow
        return o
    }

    /// The cookie secret when none is configured: random, the same for the process's lifetime (a
    /// reload keeps the cookies clients hold valid).
    static let processCookieSecret = CookieSecret.random()
}
