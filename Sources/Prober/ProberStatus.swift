import Foundation
package import Health

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
    package var regionRTTMs: [String: (rtt: Double, extra: Double)] = [:]
    package var runs = 0
    /// Checks that started later than scheduled by more than a quarter of their interval.
    package var late = 0
    /// Largest delay between due and start (seconds), over the last minute and ever.
    package var maxLagRecent = 0.0
    package var maxLag = 0.0
    package var inFlight = 0
}
