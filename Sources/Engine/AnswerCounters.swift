import CLodestarSys
public import Steering

/// Answers given, per endpoint and per (name, pool), counted with relaxed atomics.
public final class AnswerCounters: @unchecked Sendable {
    let endpoints: UnsafeMutablePointer<UInt64>
    let byNamePool: UnsafeMutablePointer<UInt64>
    let endpointCount: Int
    let poolCount: Int
    let nameCount: Int
    /// Per name: the load-balanced queries the policy did not answer, by what happened instead.
    let outcomes: UnsafeMutablePointer<UInt64>

    public enum Fallback: Int, CaseIterable {
        /// All down, `fail-open`: every configured endpoint.
        case failOpen
        /// All down with `last-resort`, or no endpoint of the queried family: the zone's RRset.
        case zone
        case servfail

        public var label: String { ["fail-open", "zone", "servfail"][rawValue] }
    }

    public init(model: SteeringModel) {
        endpointCount = model.endpoints.count
        poolCount = model.pools.count
        nameCount = model.names.count
        endpoints = .allocate(capacity: max(1, endpointCount))
        endpoints.initialize(repeating: 0, count: max(1, endpointCount))
        byNamePool = .allocate(capacity: max(1, nameCount * poolCount))
        byNamePool.initialize(repeating: 0, count: max(1, nameCount * poolCount))
        outcomes = .allocate(capacity: max(1, nameCount * 3))
        outcomes.initialize(repeating: 0, count: max(1, nameCount * 3))
    }

    deinit {
        endpoints.deallocate()
        byNamePool.deallocate()
        outcomes.deallocate()
    }

    @inline(__always)
    func count(name: Int, pool: Int) { lodestar_count(byNamePool + (name * poolCount + pool), 1) }
    @inline(__always)
    func count(endpoint: Int) { lodestar_count(endpoints + endpoint, 1) }
    @inline(__always)
    func count(name: Int, fallback: Fallback) { lodestar_count(outcomes + (name * 3 + fallback.rawValue), 1) }

    public func endpoint(_ e: Int) -> UInt64 { lodestar_read(endpoints + e) }
    public func namePool(_ n: Int, _ p: Int) -> UInt64 { lodestar_read(byNamePool + (n * poolCount + p)) }
    public func fallbacks(_ n: Int, _ f: Fallback) -> UInt64 { lodestar_read(outcomes + (n * 3 + f.rawValue)) }
}

/// What one response counted in `AnswerCounters`, kept so that a cached copy of the response
/// counts the same when it is sent again. Holds one decision; a response with more is not cached.
public struct AnswerCount {
    var name: Int32 = -1
    var pool: Int32 = -1
    var fallback: Int8 = -1
    var endpointCount: Int8 = 0
    /// The first `endpointCount` are the endpoints counted (a SIMD vector: two stores to set up).
    var endpoints = SIMD8<Int32>()

    public init() {}

    @inline(__always)
    mutating func count(name n: Int, pool p: Int, in counters: AnswerCounters) {
        counters.count(name: n, pool: p)
        name = Int32(n)
        pool = Int32(p)
    }

    @inline(__always)
    mutating func count(name n: Int, fallback f: AnswerCounters.Fallback, in counters: AnswerCounters) {
        counters.count(name: n, fallback: f)
        name = Int32(n)
        fallback = Int8(f.rawValue)
    }

    @inline(__always)
    mutating func count(endpoint e: Int, in counters: AnswerCounters) {
        counters.count(endpoint: e)
        if endpointCount < 8 {
            endpoints[Int(endpointCount)] = Int32(e)
            endpointCount += 1
        }
    }

    /// Counts again what was counted the first time.
    @inline(__always)
    func replay(in counters: AnswerCounters) {
        guard name >= 0 else { return }
        if pool >= 0 { counters.count(name: Int(name), pool: Int(pool)) }
        if fallback >= 0 {
            counters.count(name: Int(name), fallback: AnswerCounters.Fallback(rawValue: Int(fallback))!)
        }
        for i in 0..<Int(endpointCount) { counters.count(endpoint: Int(endpoints[i])) }
    }
}
