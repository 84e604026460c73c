/// Where health input lands: the owner of the health board (the server's health controller).
/// The shared-state implementations call it, the local one at once, the etcd one from its watch.
public protocol HealthSink: AnyObject, Sendable {
    /// Endpoint verdicts from checks: this POP's prober's, or the cluster's decision over every POP's.
    func checked(_ verdicts: [EndpointObservation])
    /// Live RTT excess per region (milliseconds), for the latency step.
    func liveRTT(_ extra: [String: Double])
    /// External input for an endpoint, for `ttl` seconds (nil `up`: cleared).
    func external(endpoint: String, up: Bool?, reason: String, ttl: Double)
    /// Sets or clears this POP's own override; throws `SharedStateError` (`notFound`).
    func applyOverride(_ kind: OverrideKind, name: String, state: AdminOverride.State??, weight: Double??) throws
    /// The whole set of overrides, as the cluster shares it.
    func sharedOverrides(_ o: AdminOverrides)
    /// Whether the current model has a thing of this kind and name.
    func knows(_ kind: OverrideKind, _ name: String) -> Bool
}

/// Where anycast maintenance lands: the anycast controller, once it runs.
public protocol AnycastSink: AnyObject, Sendable {
    /// Withdraws (or puts back to automatic, nil) one of this POP's protocols; false when it has none of that name.
    @discardableResult func anycast(proto: String, withdraw: Bool?) -> Bool
    /// Whether this POP announces a prefix through that protocol.
    func hasAnycast(proto: String) -> Bool
}
