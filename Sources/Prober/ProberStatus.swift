import CLodestarSys
import Dispatch
import Foundation
import Logging
import NIOCore
import NIOPosix
import Steering

/// Prober settings (`prober:` in the config).
package struct ProberSettings: Sendable, Equatable {
    /// Most checks in flight at once; the rest wait their turn (and count as late).
    package var concurrency = 64
    /// Before answering, the first round of checks may take this long; checks still running then
    /// leave their endpoint "not checked yet" (counted up).
    package var coldStartTimeout = 5.0
    /// Health persisted in the state file is resumed at start when it is younger than this.
    package var resumeMaxAge = 300.0
    /// External health input: a file of `NAME up|down [reason]` lines, watched.
    package var externalFile: String? = nil
    /// External input older than this (the file's modification time, or the admin's POST) is ignored.
    package var externalStaleAfter = 60.0

    package init() {}
}

/// An endpoint's health as the prober sees it; `up == nil`: nothing known (counted up).
package struct EndpointObservation: Sendable, Equatable {
    package var endpoint: String
    package var up: Bool?
    package var reason: String

    package init(endpoint: String, up: Bool?, reason: String) {
        self.endpoint = endpoint
        self.up = up
        self.reason = reason
    }
}

/// What the admin API and /metrics show of one check.
package struct CheckStatus: Sendable {
    package var endpoint: String
    package var target: String
    package var kind: String
    package var up: Bool?
    package var reason: String
    package var rttMs: Double?
    package var lastRttMs: Double?
    package var penalty: Double
    package var suppressed: Bool
    package var flaps: Int
    package var runs: Int
    package var failures: [String: Int]
    package var certDaysLeft: Double?
    /// When the origin's certificate expires (Unix time).
    package var certExpiry: Double?
    package var secondsSinceLast: Double?
}

/// What the admin API and /metrics show of the prober as a whole.
package struct ProberStatus: Sendable {
    package var checks: [CheckStatus] = []
    package var endpoints: [EndpointObservation] = []
    package var external: [String: (up: Bool, reason: String, expiresIn: Double)] = [:]
    package var regionRTTMs: [String: (rtt: Double, extra: Double)] = [:]
    package var runs = 0
    /// Checks that started later than scheduled by more than a quarter of their interval.
    package var late = 0
    /// Largest delay between due and start (seconds), over the last minute and ever.
    package var maxLagRecent = 0.0
    package var maxLag = 0.0
    package var inFlight = 0
}
