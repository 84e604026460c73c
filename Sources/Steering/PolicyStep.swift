/// One step of a name's policy chain, evaluated in order (like NS1's filter chain).
public enum PolicyStep: String, Sendable, CaseIterable {
    /// Drops endpoints the prober or the admin marks down; pools below their threshold.
    case health
    /// Orders regions by rules (continent, country, subdivision, ASN, CIDR) or distance.
    case geo
    /// Orders regions by expected RTT, with hysteresis.
    case latency
    /// Keeps the first pool that is up (or spreads its share when `spread`).
    case failover
    /// Picks endpoints (and pools, without failover) by weighted random.
    case weighted
}
