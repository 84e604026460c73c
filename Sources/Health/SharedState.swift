/// The state a deployment shares, or one POP keeps alone: this POP's check verdicts and live
/// RTT, the operator's overrides, external health input, and anycast maintenance. Chosen once at
/// start (`LocalState`, or the cluster's on etcd); no caller asks which it has.
public protocol SharedState: AnyObject, Sendable {
    func start()
    func stop()
    /// This POP's verdicts from its prober (nil `up`: not checked any more).
    func verdicts(_ v: [EndpointObservation])
    /// This POP's live RTT excess per region.
    func liveRTT(_ extra: [String: Double])
    /// Sets (`state`/`weight` given) or clears (given as nil) an override; throws `SharedStateError`.
    func setOverride(_ kind: OverrideKind, name: String, state: AdminOverride.State??, weight: Double??) throws
    /// External input for an endpoint for `ttl` seconds (nil `up`: automatic again); false when
    /// there is no such endpoint; throws `SharedStateError`.
    func setExternal(endpoint: String, up: Bool?, reason: String, ttl: Double) throws -> Bool
    /// Withdraws an anycast protocol for maintenance (nil: automatic) here, or on `pop`; false
    /// when this POP has no such protocol; throws `SharedStateError`.
    func setAnycast(proto: String, withdraw: Bool?, pop: String?) throws -> Bool
}

/// One POP alone: everything applies here at once.
public final class LocalState: SharedState {
    let health: HealthSink
    let anycast: AnycastSink

    public init(health: HealthSink, anycast: AnycastSink) {
        self.health = health
        self.anycast = anycast
    }

    public func start() {}
    public func stop() {}
    public func verdicts(_ v: [EndpointObservation]) { health.checked(v) }
    public func liveRTT(_ extra: [String: Double]) { health.liveRTT(extra) }

    public func setOverride(_ kind: OverrideKind, name: String, state: AdminOverride.State??, weight: Double??) throws {
        try health.applyOverride(kind, name: name, state: state, weight: weight)
    }

    public func setExternal(endpoint: String, up: Bool?, reason: String, ttl: Double) throws -> Bool {
        guard health.knows(.endpoints, endpoint) else { return false }
        health.external(endpoint: endpoint, up: up, reason: reason, ttl: ttl)
        return true
    }

    public func setAnycast(proto: String, withdraw: Bool?, pop: String?) throws -> Bool {
        guard pop == nil else { throw SharedStateError(.invalid, "pop is for a cluster; this server has none") }
        return anycast.anycast(proto: proto, withdraw: withdraw)
    }
}
