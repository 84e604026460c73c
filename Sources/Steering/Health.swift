/// Health as the query path reads it: immutable, rebuilt and swapped whole when anything changes.
///
/// Times are seconds on the monotonic clock the `HealthBoard` was given. A share that ramps
/// after a recovery is computed from `upSince` and the pool's slow-start window at query time.
public struct HealthView: Sendable {
    public struct EndpointState: Sendable, Equatable {
        public var up: Bool = true
        public var upSince: Double = -.infinity
        /// The weight in force: configured, or the admin's override.
        public var weight: Double
        public var reason: String = "up"
    }

    public struct PoolState: Sendable, Equatable {
        /// At least `upThreshold` of its endpoints are up, or the admin forces it up.
        public var passing: Bool = true
        public var upSince: Double = -.infinity
        public var weight: Double
        public var upFraction: Double = 1
        public var reason: String = "up"
    }

    public var endpoints: [EndpointState]
    public var pools: [PoolState]
    /// Per region: how many milliseconds the prober's RTT to its endpoints currently exceeds their
    /// best (0 without live measurements); the latency step adds it to the map's RTT.
    public var regionExtraRTT: [Double]
    /// The same facts in flat arrays for the query path, in a class so a query takes one reference
    /// instead of copying arrays: set by `freeze()`.
    public private(set) var facts: HealthFacts

    /// Everything up, configured weights: the view before any check or override.
    public init(model: SteeringModel) {
        endpoints = model.endpoints.map { EndpointState(weight: $0.weight) }
        pools = model.pools.map { PoolState(weight: $0.weight) }
        regionExtraRTT = model.regions.map { _ in 0 }
        facts = HealthFacts(endpoints: endpoints, pools: pools, regionExtraRTT: regionExtraRTT, model: model)
    }

    /// Copies `endpoints` and `pools` into the flat arrays the query path reads.
    public mutating func freeze(model: SteeringModel) {
        facts = HealthFacts(endpoints: endpoints, pools: pools, regionExtraRTT: regionExtraRTT, model: model)
    }

    @inline(__always)
    public func factor(endpoint e: Int, window: Double, now: Double) -> Double {
        facts.factor(endpoint: e, window: window, now: now)
    }

    @inline(__always)
    public func factor(pool p: Int, window: Double, now: Double) -> Double {
        facts.factor(pool: p, window: window, now: now)
    }
}

/// Health in flat arrays, immutable: what a query reads.
public final class HealthFacts: Sendable {
    public let endpointUp: [Bool]
    public let endpointSince: [Double]
    public let endpointWeight: [Double]
    public let poolPassing: [Bool]
    public let poolSince: [Double]
    public let poolWeight: [Double]
    /// For explanations only.
    public let poolReason: [String]
    /// Per pool: whether an endpoint usable for IPv4 (an address or a CNAME) is up; the same for IPv6.
    public let poolUp4: [Bool]
    public let poolUp6: [Bool]
    /// Per pool: from when the pool and all its endpoints are up and past slow start (+∞ while any
    /// is down). Before that, names using the pool answer with their low TTL.
    public let poolSettled: [Double]
    /// Per pool: its region's live RTT excess in milliseconds (see `HealthView.regionExtraRTT`).
    public let poolExtraRTT: [Double]

    init(endpoints: [HealthView.EndpointState], pools: [HealthView.PoolState], regionExtraRTT: [Double],
         model: SteeringModel) {
        poolExtraRTT = model.pools.map { regionExtraRTT[$0.region] }
        endpointUp = endpoints.map(\.up)
        endpointSince = endpoints.map(\.upSince)
        endpointWeight = endpoints.map(\.weight)
        poolPassing = pools.map(\.passing)
        poolSince = pools.map(\.upSince)
        poolWeight = pools.map(\.weight)
        poolReason = pools.map(\.reason)
        func anyUp(_ p: Pool, _ family: Int) -> Bool {
            p.endpoints.contains { e in
                let f = model.endpoints[e].target.family
                return (f == 0 || f == family) && endpoints[e].up
            }
        }
        poolUp4 = model.pools.map { anyUp($0, 4) }
        poolUp6 = model.pools.map { anyUp($0, 6) }
        poolSettled = model.pools.enumerated().map { (i, p) in
            guard pools[i].passing, p.endpoints.allSatisfy({ endpoints[$0].up }) else { return .infinity }
            guard p.slowStart > 0 else { return -.infinity }
            return p.endpoints.reduce(pools[i].upSince) { max($0, endpoints[$1].upSince) } + p.slowStart
        }
    }

    /// 0…1: how much of its share an endpoint takes now (0 down, ramping during slow start).
    @inline(__always)
    public func factor(endpoint e: Int, window: Double, now: Double) -> Double {
        guard endpointUp[e] else { return 0 }
        return ramp(since: endpointSince[e], window: window, now: now)
    }

    @inline(__always)
    public func factor(pool p: Int, window: Double, now: Double) -> Double {
        guard poolPassing[p] else { return 0 }
        return ramp(since: poolSince[p], window: window, now: now)
    }

    @inline(__always)
    func ramp(since: Double, window: Double, now: Double) -> Double {
        guard window > 0, now - since < window else { return 1 }
        return max(0, (now - since) / window)
    }
}

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

/// The overrides in force, by name so they survive reloads that renumber things.
public struct AdminOverrides: Sendable, Equatable, Codable {
    public var regions: [String: AdminOverride] = [:]
    public var pools: [String: AdminOverride] = [:]
    public var endpoints: [String: AdminOverride] = [:]

    public init() {}

    public var isEmptyOverrides: Bool { regions.isEmpty && pools.isEmpty && endpoints.isEmpty }
}

/// Combines the prober's results and the admin's overrides into `HealthView`s, remembering when
/// each endpoint and pool last came up (for slow start). Not thread-safe: the owner serialises it.
public struct HealthBoard: Sendable {
    public private(set) var model: SteeringModel
    public private(set) var view: HealthView
    public private(set) var overrides = AdminOverrides()
    /// What the prober (or an external feed) says, by endpoint name; absent = up (never checked).
    public private(set) var observed: [String: (up: Bool, reason: String)] = [:]

    public init(model: SteeringModel) {
        self.model = model
        self.view = HealthView(model: model)
    }

    /// A new model (reload): state carries over by name.
    public mutating func replaceModel(_ m: SteeringModel, now: Double) {
        let old = (model: model, view: view)
        model = m
        recompute(now: now, previous: old.view, previousModel: old.model)
    }

    public mutating func setOverrides(_ o: AdminOverrides, now: Double) {
        let previous = view
        overrides = o
        recompute(now: now, previous: previous, previousModel: model)
    }

    public mutating func setObserved(endpoint: String, up: Bool, reason: String, now: Double) {
        setObserved([(endpoint, up, reason)], now: now)
    }

    /// Several prober results at once (one recomputation); `up: nil` forgets what was observed.
    public mutating func setObserved(_ changes: [(endpoint: String, up: Bool?, reason: String)], now: Double) {
        let previous = view
        for c in changes { observed[c.endpoint] = c.up.map { ($0, c.reason) } }
        recompute(now: now, previous: previous, previousModel: model)
    }

    /// Live RTT excess per region name (milliseconds over the best measured), from the prober.
    public private(set) var liveExtraRTT: [String: Double] = [:]

    public mutating func setLiveRTT(_ extra: [String: Double], now: Double) {
        let previous = view
        liveExtraRTT = extra
        recompute(now: now, previous: previous, previousModel: model)
    }

    /// Recomputes every state; a transition from down to up starts that thing's slow start.
    mutating func recompute(now: Double, previous: HealthView, previousModel: SteeringModel) {
        var v = HealthView(model: model)
        for (i, e) in model.endpoints.enumerated() {
            let pool = model.pools[e.pool]
            let region = model.regions[pool.region]
            // The most specific override wins for state; weights multiply down only through the endpoint's own.
            let o = overrides.endpoints[e.name], po = overrides.pools[pool.name], ro = overrides.regions[region.name]
            var s = HealthView.EndpointState(weight: o?.weight ?? e.weight)
            let forced = o?.state ?? po?.state ?? ro?.state
            let who = o?.state != nil ? "endpoint" : (po?.state != nil ? "pool" : "region")
            switch forced {
            case .up?: s.up = true; s.reason = "forced up by admin (\(who))"
            case .down?: s.up = false; s.reason = "forced down by admin (\(who))"
            case .drain?: s.up = false; s.reason = "drained by admin (\(who))"
            case nil:
                if let ob = observed[e.name] { s.up = ob.up; s.reason = ob.reason } else { s.up = true; s.reason = "up (not checked)" }
            }
            let before = previousModel.endpoint(named: e.name).map { previous.endpoints[$0] }
            if let before {
                s.upSince = before.upSince
                if s.up && !before.up { s.upSince = now }
            }
            v.endpoints[i] = s
        }
        for (i, p) in model.pools.enumerated() {
            let region = model.regions[p.region]
            let o = overrides.pools[p.name], ro = overrides.regions[region.name]
            var s = HealthView.PoolState(weight: o?.weight ?? ro?.weight ?? p.weight)
            let up = p.endpoints.filter { v.endpoints[$0].up }.count
            s.upFraction = p.endpoints.isEmpty ? 0 : Double(up) / Double(p.endpoints.count)
            switch o?.state ?? ro?.state {
            case .up?: s.passing = true; s.reason = "forced up by admin"
            case .down?: s.passing = false; s.reason = "forced down by admin"
            case .drain?: s.passing = false; s.reason = "drained by admin"
            case nil:
                s.passing = up > 0 && s.upFraction + 1e-9 >= p.upThreshold
                s.reason = s.passing ? "\(up) of \(p.endpoints.count) endpoints up"
                    : "\(up) of \(p.endpoints.count) endpoints up, below the threshold \(p.upThreshold)"
            }
            if let j = previousModel.pool(named: p.name) {
                let before = previous.pools[j]
                s.upSince = before.upSince
                if s.passing && !before.passing { s.upSince = now }
            }
            v.pools[i] = s
        }
        v.regionExtraRTT = model.regions.map { liveExtraRTT[$0.name] ?? 0 }
        v.freeze(model: model)
        view = v
    }
}
