import Zones

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
    /// reload, keeps serving the version in `previous`; the others are served.
    package static func load(config: Config, previous: Snapshot?) throws -> Outcome {
        let loaded = try ZoneDirectory.load(config.zonesDirectory)
        var zones: [Zone] = []
        var problems: [ZoneError] = []
        var kept: [String] = []
        for l in loaded {
            problems += l.problems
            if let z = l.zone {
                zones.append(z)
            } else if let old = previous?.zones.zones.first(where: { $0.originText.lowercased() == l.origin.lowercased() }) {
                zones.append(old)
                kept.append(l.origin)
            }
        }
        let snapshot = Snapshot(config: config, zones: ZoneSet(zones), generation: (previous?.generation ?? 0) + 1)
        return Outcome(snapshot: snapshot, problems: problems, loaded: loaded, keptPrevious: kept)
    }
}
