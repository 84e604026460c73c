import Foundation

/// One name ready for queries: its tries and location classes, and its settings as flat fields
/// (a class, so the query path takes one reference instead of copying arrays and strings).
public final class CompiledName: Sendable {
    public let config: SteeredName
    public let v4: LocationTrie
    public let v6: LocationTrie
    public let classes: [LocationClass]
    /// The class used when the answer does not depend on the client.
    public let defaultClass: Int
    /// Geo or latency in the chain: the answer depends on where the client is.
    public let locationDependent: Bool
    /// Classes flattened: pool order and RTTs, `SteeringTable.maxPoolsPerName` slots per class.
    let classOrder: [Int16]
    let classRTT: [Double]
    let classLength: [UInt8]
    /// Per global pool: whether it holds endpoints usable for IPv4 / IPv6 answers.
    let poolHas4: [Bool]
    let poolHas6: [Bool]
    let pools: [Int32]
    let useHealth: Bool, useLatency: Bool, useFailover: Bool, useWeighted: Bool, spread: Bool
    let allDown: AllDownMode
    let answers: Int
    let stickyV4: Int, stickyV6: Int
    public let ttlHigh: UInt32, ttlLow: UInt32
    let hysteresis: Double

    init(
        config: SteeredName, v4: LocationTrie, v6: LocationTrie, classes: [LocationClass], defaultClass: Int,
        locationDependent: Bool, model: SteeringModel
    ) {
        self.config = config
        self.v4 = v4
        self.v6 = v6
        self.classes = classes
        self.defaultClass = defaultClass
        self.locationDependent = locationDependent
        let stride = SteeringTable.maxPoolsPerName
        var order = [Int16](repeating: -1, count: classes.count * stride)
        var rtt = [Double](repeating: 0, count: classes.count * stride)
        var length = [UInt8](repeating: 0, count: classes.count)
        for (k, c) in classes.enumerated() {
            length[k] = UInt8(min(stride, c.order.count))
            for (i, p) in c.order.prefix(stride).enumerated() {
                order[k * stride + i] = Int16(p)
                rtt[k * stride + i] = c.rtt.isEmpty ? 0 : c.rtt[i]
            }
        }
        classOrder = order
        classRTT = rtt
        classLength = length
        poolHas4 = model.pools.map { p in p.endpoints.contains { [0, 4].contains(model.endpoints[$0].target.family) } }
        poolHas6 = model.pools.map { p in p.endpoints.contains { [0, 6].contains(model.endpoints[$0].target.family) } }
        pools = config.pools.map { Int32($0) }
        useHealth = config.has(.health)
        useLatency = config.has(.latency)
        useFailover = config.has(.failover)
        useWeighted = config.has(.weighted)
        spread = config.spread
        allDown = config.allDown
        answers = config.answers
        stickyV4 = config.sticky?.v4 ?? -1
        stickyV6 = config.sticky?.v6 ?? -1
        ttlHigh = config.ttlHigh
        ttlLow = config.ttlLow
        hysteresis = config.latency?.hysteresis ?? 0
    }
}
