public import Foundation
import Synchronization

/// Opens databases again for `explain`, which names a client's location: the server does not keep
/// them once its maps are compiled. An opened database is kept for `idle` seconds after its last
/// use (a run of explains opens it once), then closed; one is opened at a time, so a burst of
/// explains costs one copy of the file, not one each.
public final class GeoReopener: Sendable {
    public static let shared = GeoReopener(idle: 10)

    private struct Entry {
        var database: GeoDatabase
        var lastUse: Date
    }

    private let idle: TimeInterval
    private let open = Mutex<[String: Entry]>([:])
    /// Held while opening or reading (explains take turns).
    private let turn = NSLock()

    public init(idle: TimeInterval) {
        self.idle = idle
    }

    /// The record of an address (4 or 16 octets) in the database at `path` as the file is now, and
    /// which version of the file that is.
    public func lookup(_ path: String, _ address: [UInt8]) throws -> (record: GeoRecord?, identity: FileIdentity) {
        try turn.withLock {
            let now = FileIdentity.of(path)
            var db = open.withLock { $0[path]?.database }
            if db == nil || now == nil || db?.identity != now {
                db = nil
                open.withLock { $0[path] = nil }
                db = try GeoDatabase(path: path)
            }
            let database = db!
            open.withLock { $0[path] = Entry(database: database, lastUse: Date()) }
            scheduleClose()
            return (database.lookup(address), database.identity)
        }
    }

    /// Databases open now (for tests: they close once idle).
    public var openCount: Int { open.withLock { $0.count } }

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
