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
        /// How the location maps were had: compiled (from which databases, in how long) or kept.
        package var geoReport: String? = nil
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
        var geoReport: String? = nil
        let steering = try compileSteering(
            config: config, zones: set, previous: previous?.steering, health: health, report: &geoReport)
        let snapshot = Snapshot(
            options: config.engineOptions, listener: config.listenerOptions, zones: set, steering: steering,
            generation: (previous?.generation ?? 0) + 1, metrics: previous?.metrics ?? QueryMetrics())
        return Outcome(
            snapshot: snapshot, problems: problems, loaded: loaded, keptPrevious: kept, geoReport: geoReport)
    }

    /// Validates the load-balanced names against the zones, opens the databases and compiles. The
    /// databases are opened only when a location map must be compiled: on a reload where neither
    /// they (by file identity) nor any name's location configuration changed, the previous
    /// table's tries are taken as they are.
    static func compileSteering(
        config: Config, zones: ZoneSet, previous: SteeringRuntime?,
        health: (SteeringModel) -> HealthView, report: inout String?
    ) throws -> SteeringRuntime? {
        let model = config.steering
        guard !model.names.isEmpty else { return nil }
        let file = config.file ?? "config"
        for n in model.names {
            try validate(n, model: model, zones: zones, file: file)
        }
        let needsLocation = model.names.contains { $0.has(.geo) || $0.has(.latency) }
        if needsLocation, config.geoDatabase == nil,
            let n = model.names.first(where: { geoNeedsDatabase($0) || latencyNeedsDatabase($0, model) })
        {
            throw ConfigError(
                file: file, line: n.line,
                message: geoNeedsDatabase(n)
                    ? "name \(n.name) has geo rules by continent, country, subdivision or distance, but no geo.database is configured"
                    : "name \(n.name) has a latency map by continent or country, or a row without every region (estimated from distance), but no geo.database is configured"
            )
        }
        let paths: (city: String?, asn: String?) =
            needsLocation ? (config.geoDatabase, config.asnDatabase) : (nil, nil)
        var sources = GeoSources.opened(city: nil, asn: nil)
        if needsLocation {
            if let old = previous?.table, let now = filesNow(paths),
                SteeringTable.canReuse(old, for: model, files: now)
            {
                sources = .unchanged
                report = "location maps unchanged: the databases and every name's location settings are as before"
            } else {
                let start = Date()
                let city = try paths.city.map { try GeoInput(open($0)) }
                let asn = try paths.asn.map { try GeoInput(open($0)) }
                try checkKind(city: city, asn: asn, model: model)
                sources = .opened(city: city, asn: asn)
                let read = Date().timeIntervalSince(start)
                func seconds(_ v: Double) -> String { String(format: "%.2f", v) }
                report =
                    [city, asn].compactMap { $0 }.map {
                        let d = $0.database
                        return
                            "\(d.path) (\(d.databaseType), \(d.recordCount) records, \($0.locations.records.count) locations: tree \(seconds(d.readSeconds.walk)) s, check \(seconds(d.readSeconds.check)) s, decode \(seconds($0.locations.seconds)) s)"
                    }.joined(separator: " and ") + " read in \(seconds(read)) s"
            }
        }
        let start = Date()
        let table = SteeringTable(model: model, sources: sources, previous: previous?.table)
        if case .opened = sources, needsLocation {
            let maps = table.mapsCompiled
            report =
                (report ?? "")
                + "; \(maps) location map\(maps == 1 ? "" : "s") compiled in \(String(format: "%.2f", Date().timeIntervalSince(start))) s on \(ProcessInfo.processInfo.activeProcessorCount) cores"
        }
        return SteeringRuntime(
            table: table, health: health(model), counters: AnswerCounters(model: model), zones: zones)
    }

    /// A database of the wrong kind opens and checks fine, and then places no client: an ASN
    /// database as `geo.database` sent every client to the configured order. Refused when the
    /// names need what it lacks: a continent or country in some record of the City database, an
    /// ASN in some record of the ASN database.
    static func checkKind(city: GeoInput?, asn: GeoInput?, model: SteeringModel) throws {
        if let city, model.names.contains(where: { geoNeedsDatabase($0) || latencyNeedsDatabase($0, model) }),
            !city.locations.records.contains(where: { $0.continent != nil || $0.country != nil })
        {
            throw ConfigError(
                file: city.database.path, line: 0,
                message:
                    "geo database: no record holds a continent or a country (\(city.database.databaseType)): geo.database takes a City or Country database; an ASN database goes in geo.asn-database"
            )
        }
        if let asn, model.names.contains(where: { $0.has(.geo) && !($0.geo?.asn.isEmpty ?? true) }),
            !asn.locations.records.contains(where: { $0.asn != nil })
        {
            throw ConfigError(
                file: asn.database.path, line: 0,
                message:
                    "geo database: no record holds an autonomous_system_number (\(asn.database.databaseType)): geo.asn-database takes an ASN database"
            )
        }
    }

    /// The databases' identities as the files are now (nil when one cannot be read: it must be opened).
    static func filesNow(_ paths: (city: String?, asn: String?)) -> GeoFiles? {
        func file(_ path: String?) -> (ok: Bool, file: GeoFile?) {
            guard let path else { return (true, nil) }
            guard let id = FileIdentity.of(path) else { return (false, nil) }
            return (true, GeoFile(path: path, identity: id, databaseType: "", recordCount: 0, locationCount: 0))
        }
        let (c, a) = (file(paths.city), file(paths.asn))
        guard c.ok, a.ok else { return nil }
        return GeoFiles(city: c.file, asn: a.file)
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

    /// Opens a database (checked whole), naming it in the error.
    static func open(_ path: String) throws -> GeoDatabase {
        do {
            return try GeoDatabase(path: path)
        } catch let e as GeoError {
            throw ConfigError(file: e.file, line: 0, message: "geo database: \(e.message)")
        }
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
