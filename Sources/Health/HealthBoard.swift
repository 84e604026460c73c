/// Combines what the checks say, external input and the admin's overrides into `HealthView`s,
/// remembering when each endpoint and pool last came up (for slow start). Not thread-safe: the
/// owner serialises it.
public struct HealthBoard: Sendable {
    public private(set) var topology: HealthTopology
    public private(set) var view: HealthView
    public private(set) var overrides = AdminOverrides()
    /// What the checks say (this POP's prober, or the cluster's decision over every POP's), by
    /// endpoint name; absent: nothing known.
    public private(set) var observed: [String: (up: Bool, reason: String)] = [:]
    /// External input in force, by endpoint name (combined with the checks by the endpoint's mode).
    public private(set) var external: [String: ExternalInput] = [:]
    /// External input from the external file, kept apart from the API's so that neither replaces
    /// the other; both are combined with the checks.
    public private(set) var fileExternal: [String: ExternalInput] = [:]

    public init(topology: HealthTopology) {
        self.topology = topology
        self.view = HealthView(topology: topology)
    }

    /// A new topology (reload): state carries over by name.
    public mutating func replaceTopology(_ t: HealthTopology, now: Double) {
        let old = (topology: topology, view: view)
        topology = t
        recompute(now: now, previous: old.view, previousTopology: old.topology)
    }

    public mutating func setOverrides(_ o: AdminOverrides, now: Double) {
        let previous = view
        overrides = o
        recompute(now: now, previous: previous, previousTopology: topology)
    }

    public mutating func setObserved(endpoint: String, up: Bool, reason: String, now: Double) {
        setObserved([(endpoint, up, reason)], now: now)
    }

    /// Several prober results at once (one recomputation); `up: nil` forgets what was observed.
    public mutating func setObserved(_ changes: [(endpoint: String, up: Bool?, reason: String)], now: Double) {
        let previous = view
        for c in changes { observed[c.endpoint] = c.up.map { ($0, c.reason) } }
        recompute(now: now, previous: previous, previousTopology: topology)
    }

    /// Sets (or with nil clears) an endpoint's external input.
    public mutating func setExternal(endpoint: String, _ input: ExternalInput?, now: Double) {
        let previous = view
        external[endpoint] = input
        recompute(now: now, previous: previous, previousTopology: topology)
    }

    /// Replaces the external input that came from the file (the API's stays).
    public mutating func setFileExternal(_ inputs: [String: ExternalInput], now: Double) {
        let previous = view
        fileExternal = inputs
        recompute(now: now, previous: previous, previousTopology: topology)
    }

    /// Drops the external input whose time has passed; the names dropped, with where each came from.
    public mutating func expireExternal(now: Double) -> [(endpoint: String, fromFile: Bool)] {
        let gone = external.filter { $0.value.expires <= now }
        let goneFile = fileExternal.filter { $0.value.expires <= now }
        guard !gone.isEmpty || !goneFile.isEmpty else { return [] }
        let previous = view
        for name in gone.keys { external[name] = nil }
        for name in goneFile.keys { fileExternal[name] = nil }
        recompute(now: now, previous: previous, previousTopology: topology)
        return (gone.map { ($0.key, false) } + goneFile.map { ($0.key, true) }).sorted {
            $0.0 < $1.0 || ($0.0 == $1.0 && !$0.1)
        }
    }

    /// The endpoint's verdict from its checks and external input (nil `up`: nothing known).
    public func verdict(endpoint i: Int) -> (up: Bool?, reason: String) {
        let e = topology.endpoints[i]
        return EndpointVerdict.combine(
            mode: e.checkMode, count: e.checks.count,
            checks: observed[e.name].map { ($0.up, $0.reason) },
            external: [external[e.name], fileExternal[e.name]].compactMap { $0.map { ($0.up, $0.reason) } })
    }

    /// Live RTT excess per region name (milliseconds over the best measured), from the prober.
    public private(set) var liveExtraRTT: [String: Double] = [:]

    public mutating func setLiveRTT(_ extra: [String: Double], now: Double) {
        let previous = view
        liveExtraRTT = extra
        recompute(now: now, previous: previous, previousTopology: topology)
    }

    /// Recomputes every state; a transition from down to up starts that thing's slow start.
    mutating func recompute(now: Double, previous: HealthView, previousTopology: HealthTopology) {
        var v = HealthView(topology: topology)
        for (i, e) in topology.endpoints.enumerated() {
            let pool = topology.pools[e.pool]
            let region = topology.regions[pool.region]
            // The most specific override wins for state; weights multiply down only through the endpoint's own.
            let o = overrides.endpoints[e.name]
            let po = overrides.pools[pool.name]
            let ro = overrides.regions[region]
            var s = HealthView.EndpointState(weight: o?.weight ?? e.weight)
            let forced = o?.state ?? po?.state ?? ro?.state
            let who = o?.state != nil ? "endpoint" : (po?.state != nil ? "pool" : "region")
            switch forced {
            case .up?:
                s.up = true
                s.reason = "forced up by admin (\(who))"
            case .down?:
                s.up = false
                s.reason = "forced down by admin (\(who))"
            case .drain?:
                s.up = false
                s.reason = "drained by admin (\(who))"
            case nil:
                let v = verdict(endpoint: i)
                if let up = v.up {
                    s.up = up
                    s.reason = v.reason
                } else {
                    s.up = true
                    s.reason = "up (not checked)"
                }
            }
            let before = previousTopology.endpoint(named: e.name).map { previous.endpoints[$0] }
            if let before {
                s.upSince = before.upSince
                if s.up && !before.up { s.upSince = now }
            }
            v.endpoints[i] = s
        }
        for (i, p) in topology.pools.enumerated() {
            let region = topology.regions[p.region]
            let o = overrides.pools[p.name]
            let ro = overrides.regions[region]
            var s = HealthView.PoolState(weight: o?.weight ?? ro?.weight ?? p.weight)
            let up = p.endpoints.filter { v.endpoints[$0].up }.count
            s.upFraction = p.endpoints.isEmpty ? 0 : Double(up) / Double(p.endpoints.count)
            switch o?.state ?? ro?.state {
            case .up?:
                s.passing = true
                s.reason = "forced up by admin"
            case .down?:
                s.passing = false
                s.reason = "forced down by admin"
            case .drain?:
                s.passing = false
                s.reason = "drained by admin"
            case nil:
                s.passing = up > 0 && s.upFraction + 1e-9 >= p.upThreshold
                s.reason =
                    s.passing
                    ? "\(up) of \(p.endpoints.count) endpoints up"
                    : "\(up) of \(p.endpoints.count) endpoints up, below the threshold \(p.upThreshold)"
            }
            if let j = previousTopology.pool(named: p.name) {
                let before = previous.pools[j]
                s.upSince = before.upSince
                if s.passing && !before.passing { s.upSince = now }
            }
            v.pools[i] = s
        }
        v.regionExtraRTT = topology.regions.map { liveExtraRTT[$0] ?? 0 }
        v.freeze(topology: topology)
        view = v
    }
}
