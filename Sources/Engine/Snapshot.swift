public import Health
public import Protection
public import Steering
public import Zones

/// Everything a query reads, immutable: swapped whole on reload, and on every health or admin
/// change, so a query never sees half of one.
public final class Snapshot: Sendable {
    public let engine: QueryEngine
    /// What the listeners read per snapshot, so a reload changes them with the rest.
    public let listener: ListenerOptions
    public let zones: ZoneSet
    public let steering: SteeringRuntime?
    public let generation: Int
    /// The server's query counters: the same object in every snapshot of a run.
    public let metrics: QueryMetrics

    public init(
        options: EngineOptions, listener: ListenerOptions = ListenerOptions(), zones: ZoneSet,
        steering: SteeringRuntime? = nil, generation: Int, metrics: QueryMetrics
    ) {
        self.metrics = metrics
        self.listener = listener
        self.zones = zones
        self.steering = steering
        self.engine = QueryEngine(zones: zones, options: options, steering: steering, metrics: metrics)
        self.generation = generation
    }

    /// The engine's options, as configured.
    public var options: EngineOptions { engine.options }

    /// The same snapshot with other health: for probe results and admin changes.
    public func with(health: HealthView) -> Snapshot {
        Snapshot(
            options: options, listener: listener, zones: zones, steering: steering?.with(health: health),
            generation: generation, metrics: metrics)
    }
}

/// What the UDP and TCP listeners take from the configuration, per snapshot.
public struct ListenerOptions: Sendable, Equatable {
    /// Responses each UDP receive loop keeps for reuse (`AnswerCache`); 0 turns the cache off.
    public var answerCache: Int = 4096
    /// Seconds a TCP connection may stay silent (RFC 7766 §6.2.3).
    public var tcpIdleTimeout: Double = 10
    /// Beyond this many TCP connections, new ones are closed at once.
    public var tcpMaxConnections: Int = 1024
    /// The same from one client address.
    public var tcpMaxConnectionsPerClient: Int = 32
    /// Seconds a whole TCP message may take from its first octet.
    public var tcpMessageTimeout: Double = 2
    /// Zone transfers under way at once; beyond, REFUSED.
    public var transferConcurrency: Int = 4
    /// Response rate limiting over UDP, and the sources it never limits.
    public var rateLimit = RateLimitSettings()
    public var rateLimitExempt: [Prefix] = []
    /// Peers whose PROXY protocol v2 header is trusted: the address in it is the client. Empty: off.
    public var proxyAllow: [Prefix] = []

    public init() {}
}
