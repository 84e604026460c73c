/// How one health check's results turn into up/down: rise/fall hysteresis and flap damping.
///
/// Defaults: rise 2 and fall 3 at a 10 s interval (gdnsd checks every 10 s but needs 20 successes
/// to come up and 10 failures to go down — minutes; Route 53 uses 3 both ways at 30 s). A failed
/// origin is out within interval × fall = 30 s, back within 20 s, and flapping is handled by
/// damping instead of by long counters.
public struct CheckPolicy: Sendable, Equatable, Hashable {
    /// Consecutive successes to go from down to up.
    public var rise = 2
    /// Consecutive failures to go from up to down.
    public var fall = 3
    /// Flap damping (RFC 2439's scheme): each up→down change adds `penaltyPerFlap`; the penalty
    /// halves every `halfLife` seconds; above `suppress` the check is held down until the penalty
    /// decays below `reuse`, and never longer than `maxHold` seconds.
    public var penaltyPerFlap = 1000.0
    public var suppress = 2000.0
    public var reuse = 750.0
    public var halfLife = 60.0
    public var maxHold = 600.0

    public init() {}
}
