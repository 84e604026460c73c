/// Expected RTT in milliseconds from a client's location to each region (by region index).
public struct LatencyMap: Sendable, Equatable {
    public var continent: [String: [Int: Double]] = [:]
    public var country: [String: [Int: Double]] = [:]
    public var nets: [(Prefix, [Int: Double])] = []
    public var defaultRTT: [Int: Double] = [:]
    /// RTTs within this many milliseconds of the best count as equal: the earlier order stands.
    public var hysteresis: Double = 10

    public init() {}

    public static func == (a: LatencyMap, b: LatencyMap) -> Bool {
        a.continent == b.continent && a.country == b.country && a.defaultRTT == b.defaultRTT
            && a.hysteresis == b.hysteresis && a.nets.count == b.nets.count
            && zip(a.nets, b.nets).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
    }
}
