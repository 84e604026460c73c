import Foundation

/// What the admin API and /metrics show per prefix.
package struct PrefixStatus: Sendable, Encodable {
    package var prefix: String
    package var proto: String
    package var desired: String
    package var reason: String
    package var alarm: String?
    /// BIRD's state of the static protocol (`up`, `down`, …), nil when not known.
    package var birdState: String?
    /// Whether `show route export` lists the prefix for the export protocol (nil: not configured or unknown).
    package var exported: Bool?
    package var otherPaths: Int?
    package var withdrawals: Int
    package var secondsSinceChange: Double?
    /// The last `enable`/`disable` for this prefix: round trip and BIRD's final code.
    package var lastCommandSeconds: Double?
    package var lastCommandCode: Int?
    package var override: String?
}

package struct AnycastStatus: Sendable, Encodable {
    package var socket: String
    package var connected: Bool
    package var birdError: String?
    package var birdVersion: String?
    package var selfCheckUp: Bool?
    package var selfCheckReason: String
    package var lastCommand: String?
    package var lastCommandSeconds: Double?
    package var lastCommandCode: Int?
    package var commands: Int
    package var commandErrors: Int
    package var prefixes: [PrefixStatus]
}
