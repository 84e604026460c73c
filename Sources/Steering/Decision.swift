import Foundation

/// The outcome of one decision.
public struct Decision: Sendable {
    public enum Outcome: Sendable, Equatable {
        /// Answer with `picks`.
        case answer
        /// Nothing is up: answer with every configured endpoint of the family.
        case failOpen
        /// Answer from the zone file (the all-down mode, or no endpoint of the queried family).
        case zone
        case servfail
    }

    public var outcome: Outcome = .answer
    /// Endpoint indices to answer with, best first.
    public var picks = InlineArray<8, Int32>(repeating: -1)
    public var count = 0
    public var pool = -1
    /// RFC 7871 scope prefix: the depth of the location network, or the sticky prefix; 0 when the
    /// answer does not depend on the client.
    public var scope = 0
    public var ttl: UInt32 = 0
    /// False when the answer drew on this query's randomness (weights, shares, a slow-start ramp):
    /// the same client may get another answer next time. Sticky names draw on the client's subnet
    /// instead, so theirs repeat for every client of the scope.
    public var repeatable = true
    /// Monotonic seconds until which a repeatable answer stays as it is without a health change:
    /// when the last pool of a degraded name settles, the TTL goes back up.
    public var stableUntil = Double.infinity
    /// The client's location class when the decision is an answer that is a function of that class
    /// alone (taken ahead for it, `DecisionMemo`, and the name is location-dependent), else -1:
    /// every client of the class then gets this decision, with `scope` the depth of its own network.
    public var locationClass: Int32 = -1

    public init() {}

    public var endpoints: [Int] { (0..<count).map { Int(picks[$0]) } }
}

/// SplitMix64's finaliser.
@inline(__always)
public func mix(_ x: UInt64) -> UInt64 {
    var z = x &+ 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}

/// A uniform double in (0, 1).
@inline(__always)
func unit(_ x: UInt64) -> Double {
    (Double(x >> 11) + 0.5) * (1.0 / 9_007_199_254_740_992.0)
}
