public import Geo

/// A database a table was compiled from, as the table remembers it: enough to name it, to tell
/// whether the file has changed since, and for `explain` to open it again.
public struct GeoFile: Sendable, Equatable {
    public var path: String
    public var identity: FileIdentity
    public var databaseType: String
    public var recordCount: Int
    public var locationCount: Int

    public init(path: String, identity: FileIdentity, databaseType: String, recordCount: Int, locationCount: Int) {
        self.path = path
        self.identity = identity
        self.databaseType = databaseType
        self.recordCount = recordCount
        self.locationCount = locationCount
    }
}
