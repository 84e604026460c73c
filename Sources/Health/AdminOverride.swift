/// An operator's override of a region, pool or endpoint (gdnsd's admin_state, NS1's `up`).
public struct AdminOverride: Sendable, Equatable, Codable {
    public enum State: String, Sendable, Codable {
        /// Up whatever the prober says.
        case up
        /// Down: no answers, counts as failed.
        case down
        /// No new answers, for maintenance; counts as failed for thresholds.
        case drain
    }

    public var state: State?
    public var weight: Double?

    public init(state: State? = nil, weight: Double? = nil) {
        self.state = state
        self.weight = weight
    }

    public var isEmpty: Bool { state == nil && weight == nil }
}
