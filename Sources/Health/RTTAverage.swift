/// Exponentially weighted moving average of RTTs (seconds), for the latency policy.
public struct RTTAverage: Sendable, Equatable {
    /// Weight of each new sample.
    public let alpha: Double
    public private(set) var value: Double? = nil
    public private(set) var samples = 0

    public init(alpha: Double = 0.3) {
        self.alpha = alpha
    }

    public mutating func add(_ rtt: Double) {
        value = value.map { $0 + alpha * (rtt - $0) } ?? rtt
        samples += 1
    }
}
