package import Health

/// The `anycast:` config.
package struct AnycastSettings: Sendable, Equatable {
    package struct Prefix: Sendable, Equatable {
        /// `198.51.100.53/32`, as written (validated by the config parser).
        package var prefix: String
        /// The BIRD `static` protocol that announces it.
        package var proto: String
        /// Pools and regions that must be up for the prefix to stay announced.
        package var requirePools: [String] = []
        package var requireRegions: [String] = []
        /// Keep announcing unless at least this many paths from other POPs are visible in BIRD.
        package var minOtherPaths = 0
        /// BIRD protocol (the BGP session) whose exports are reported (`show route export`).
        package var exportProtocol: String? = nil

        package init(prefix: String, proto: String) {
            self.prefix = prefix
            self.proto = proto
        }
    }

    package var socket = "/run/bird/bird.ctl"
    /// The durable mirror: `define LODESTAR_<PROTO>_DOWN/_DRAIN` for BIRD's config to include.
    package var includeFile: String
    package var selfCheck: CheckSpec
    /// Seconds between re-assertions of the desired state (and after every reconnect).
    package var reassert = 30.0
    /// Announce with GRACEFUL_SHUTDOWN this long before withdrawing (0: withdraw at once).
    package var drainTime = 0.0
    /// On SIGTERM: withdraw, keep answering this long, then stop.
    package var shutdownDelay = 5.0
    package var prefixes: [Prefix] = []

    package init(includeFile: String, selfCheck: CheckSpec) {
        self.includeFile = includeFile
        self.selfCheck = selfCheck
    }
}
