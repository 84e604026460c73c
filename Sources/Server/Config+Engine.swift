import Config
import Engine

extension Config {
    /// Options the query engine reads.
    package var engineOptions: EngineOptions {
        var o = EngineOptions()
        o.transferAllow = transferAllow
        o.nsid = Array((nsid ?? "").utf8)
        o.identity = identity
        o.version = version
        return o
    }

    /// What the listeners read per snapshot.
    package var listenerOptions: ListenerOptions {
        var o = ListenerOptions()
        o.answerCache = answerCache
        o.tcpIdleTimeout = tcpIdleTimeout
        o.tcpMaxConnections = tcpMaxConnections
        return o
    }
}
