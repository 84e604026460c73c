public import Foundation
import Synchronization

/// Opens databases again for `explain`, which names a client's location: the server does not keep
/// them once its maps are compiled. An opened database is kept for `idle` seconds after its last
/// use (a run of explains opens it once), then closed. Explains take turns, so a burst of them
/// costs one copy of the file, not one each.
public final class GeoReopener: Sendable {
    public static let shared = GeoReopener(idle: 10)

    private struct Entry {
        var database: GeoDatabase
        var lastUse: Date
    }

    private let idle: TimeInterval
    /// The databases open, by path; held while one is opened or read (explains take turns).
    private let open = Mutex<[String: Entry]>([:])

    public init(idle: TimeInterval) {
        self.idle = idle
    }

    /// The record of an address (4 or 16 octets) in the database at `path` as the file is now, and
    /// which version of the file that is.
    public func lookup(_ path: String, _ address: [UInt8]) throws -> (record: GeoRecord?, identity: FileIdentity) {
        let found = try open.withLock { entries -> (GeoRecord?, FileIdentity) in
            let now = FileIdentity.of(path)
            let database: GeoDatabase
            if let kept = entries[path]?.database, now != nil, kept.identity == now {
                database = kept
            } else {
                entries[path] = nil
                database = try GeoDatabase(path: path)
            }
            entries[path] = Entry(database: database, lastUse: Date())
            return (database.lookup(address), database.identity)
        }
        scheduleClose()
        return found
    }

    private func scheduleClose() {
        DispatchQueue.global().asyncAfter(deadline: .now() + idle + 0.1) { [self] in
            let cutoff = Date().addingTimeInterval(-idle)
            let closed = open.withLock { entries -> Int in
                let before = entries.count
                entries = entries.filter { $0.value.lastUse > cutoff }
                return before - entries.count
            }
            if closed > 0 { Memory.release() }
        }
    }
}
