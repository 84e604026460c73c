import CLodestarSys
import Config
import Foundation
import Logging
import Steering

/// Open files: the soft limit raised to the hard one at start, and split so that TCP clients can
/// never take the descriptors the prober, the admin API, BIRD's socket and reloads need. A local
/// shortage must not become "origin down" or a withdrawn route.
struct DescriptorBudget {
    /// Kept for everything but DNS over TCP: listeners, zone and database files during a reload,
    /// the log, BIRD's control socket and include file, the state file.
    static let base = 128
    /// Admin API connections at once (`AdminServer.maxConnections`).
    static let admin = 64

    let limit: Int
    let reserved: Int
    /// TCP connections the descriptors allow.
    let tcpConnections: Int

    /// Raises the limit and works out the split for `config`; logs what is wrong when the limit is
    /// too low for the configured maximum of TCP connections.
    init(config: Config, logger: Logger) {
        var soft: UInt64 = 0
        var hard: UInt64 = 0
        if lodestar_raise_nofile(&soft, &hard) != 0 {
            soft = 1024
            hard = 1024
        }
        limit = Int(min(soft, UInt64(Int.max)))
        // One descriptor per probe in flight: at most one per check of each endpoint.
        let probes = config.steering.endpoints.reduce(0) { $0 + $1.checks.count }
        let loops = config.udpWorkers > 0 ? config.udpWorkers : ProcessInfo.processInfo.activeProcessorCount
        let udpSockets = config.listen.count * loops
        reserved = Self.base + Self.admin + probes + udpSockets
        tcpConnections = max(16, limit - reserved)
        if tcpConnections < config.tcpMaxConnections {
            logger.warning(
                """
                open files: the limit is \(limit) (hard \(hard == UInt64.max ? "unlimited" : String(hard))), \
                below tcp-max-connections \(config.tcpMaxConnections) + \(reserved) kept for \(probes) health checks, \
                the admin API, UDP sockets and files: TCP connections are capped at \(tcpConnections). \
                Raise it (systemd LimitNOFILE=, ulimit -n) or lower tcp-max-connections.
                """)
        }
    }
}
