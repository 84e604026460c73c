package import Config
import DNSWire
package import Engine
import Foundation
import Geo
package import Health
package import Steering
package import Zones

/// Builds snapshots from the config and the zones folder.
package enum SnapshotLoader {
    /// The outcome of one load: the snapshot plus every problem found, zone by zone.
    package struct Outcome: Sendable {
        package var snapshot: Snapshot
        package var problems: [ZoneError]
        package var loaded: [ZoneDirectory.Loaded]
        /// Zones that failed to load now but keep serving their previous version.
        package var keptPrevious: [String]
    }

    /// Loads every zone in `config.zonesDirectory`. A zone that fails to load is left out, or, on a
    /// reload, keeps serving the version in `previous`; the others are served. The load-balanced
    /// names are checked against the zones and compiled; a problem there throws (`file:line`), so
    /// a reload keeps the previous snapshot whole.
    package static func load(
        config: Config, previous: Snapshot?,
        health: (SteeringModel) -> HealthView = { HealthView(topology: $0.health) }
    ) throws -> Outcome {
        let loaded = try ZoneDirectory.load(
            config.zonesDirectory, steered: config.steering.names.map(\.wire), limits: config.zoneLimits)
        var zones: [Zone] = []
        var problems: [ZoneError] = []
        var kept: [String] = []
        for l in loaded {
            problems += l.problems
            if let z = l.zone {
                zones.append(z)
            } else if let old = previous?.zones.zones.first(where: {
                $0.originText.lowercased() == l.origin.lowercased()
            }) {
                zones.append(old)
                kept.append(l.origin)
            }
        }
        let set = ZoneSet(zones)
        let steering = try compileSteering(config: config, zones: set, previous: previous?.steering, health: health)
        let snapshot = Snapshot(
            options: config.engineOptions, listener: config.listenerOptions, zones: set, steering: steering,
            generation: (previous?.generation ?? 0) + 1, metrics: previous?.metrics ?? QueryMetrics())
        return Outcome(snapshot: snapshot, problems: problems, loaded: loaded, keptPrevious: kept)
    }

    /// Validates the load-balanced names against the zones, opens the databases and compiles.
    static func compileSteering(
        config: Config, zones: ZoneSet, previous: SteeringRuntime?,
        health: (SteeringModel) -> HealthView
    ) throws -> SteeringRuntime? {
        let model = config.steering
        guard !model.names.isEmpty else { return nil }
        let file = config.file ?? "config"
        for n in model.names {
            try validate(n, model: model, zones: zones, file: file)
        }
        let needsLocation = model.names.contains { $0.has(.geo) || $0.has(.latency) }
        var city: GeoDatabase? = nil
        var asn: GeoDatabase? = nil
        if needsLocation {
            city = try config.geoDatabase.map { try open($0, reusing: previous?.table.city) }
            asn = try config.asnDatabase.map { try open($0, reusing: previous?.table.asn) }
            if city == nil,
                let n = model.names.first(where: { geoNeedsDatabase($0) || latencyNeedsDatabase($0, model) })
            {
                throw ConfigError(
                    file: file, line: n.line,
                    message: geoNeedsDatabase(n)
                        ? "name \(n.name) has geo rules by continent, country, subdivision or distance, but no geo.database is configured"
                        : "name \(n.name) has a latency map by continent or country, or a row without every region (estimated from distance), but no geo.database is configured"
                )
            }
        }
        let table = SteeringTable(model: model, city: city, asn: asn)
        return SteeringRuntime(
            table: table, health: health(model), counters: AnswerCounters(model: model), zones: zones)
    }

    /// Whether the name's geo step needs the city database: rules other than CIDR maps and a default.
    static func geoNeedsDatabase(_ n: SteeredName) -> Bool {
        guard n.has(.geo), let g = n.geo else { return false }
        return
            !(g.continent.isEmpty && g.country.isEmpty && g.subdivision.isEmpty && g.asn.isEmpty
            && g.defaultRegions != nil)
    }

    /// Whether the name's latency step needs it: continent or country rows, or a row that leaves a
    /// region of the name's pools to be estimated from the client's distance.
    static func latencyNeedsDatabase(_ n: SteeredName, _ model: SteeringModel) -> Bool {
        guard n.has(.latency), let lat = n.latency else { return false }
        if !lat.continent.isEmpty || !lat.country.isEmpty { return true }
        let regions = Set(n.pools.map { model.pools[$0].region })
        return ([lat.defaultRTT] + lat.nets.map(\.1)).contains { row in !regions.allSatisfy { row[$0] != nil } }
    }

    /// Opens a database, or keeps the one already open when the file has not changed.
    static func open(_ path: String, reusing old: GeoDatabase?) throws -> GeoDatabase {
        if let old, old.path == path, let a = modified(path), a == old.modified { return old }
        do {
            return try GeoDatabase(path: path)
        } catch let e as GeoError {
            throw ConfigError(file: e.file, line: 0, message: "geo database: \(e.message)")
        }
    }

    static func modified(_ path: String) -> Date? {
        (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
    }

    /// A load-balanced name must sit inside a served zone, above any cut, without a CNAME of its own.
    static func validate(_ n: SteeredName, model: SteeringModel, zones: ZoneSet, file: String) throws {
        func fail(_ m: String) -> ConfigError { ConfigError(file: file, line: n.line, message: "name \(n.name): \(m)") }
        try n.wire.withUnsafeBytes { wire in
            let labels = LabelOffsets(wire)
            guard let zone = zones.zone(for: wire, labels: labels) else {
                throw fail(
                    "not inside any zone served (zones: \(zones.zones.map(\.originText).joined(separator: ", ")))")
            }
            let node = zone.find(wire)
            guard node >= 0 else { throw fail("not found in zone \(zone.originText)") }
            let flags = zone.nodes[node].flags
            if flags & (Zone.Flag.occluded | Zone.Flag.delegation) != 0 {
                throw fail("at or below a delegation in zone \(zone.originText); it belongs to the child zone")
            }
            if flags & Zone.Flag.cname != 0 {
                throw fail("the zone file has a CNAME at this name; a load-balanced name answers its own A/AAAA")
            }
            let cnamePools = n.pools.filter { p in
                model.pools[p].endpoints.contains { model.endpoints[$0].target.family == 0 }
            }
            if flags & Zone.Flag.apex != 0, let p = cnamePools.first {
                throw fail("is the zone apex, which cannot hold a CNAME (pool \(model.pools[p].name))")
            }
            for p in cnamePools {
                for e in model.pools[p].endpoints {
                    if case .cname(let t) = model.endpoints[e].target, t == n.wire {
                        throw fail("endpoint \(model.endpoints[e].name) is a CNAME to the name itself")
                    }
                }
            }
        }
    }
}
