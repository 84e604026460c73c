public import Geo

/// A database ready to compile from: its search tree and its records, decoded once and told apart.
/// Held only while a `SteeringTable` is built.
public struct GeoInput: Sendable {
    public let database: GeoDatabase
    public let locations: GeoLocations

    public init(_ database: GeoDatabase) {
        self.database = database
        locations = database.locations()
    }

    /// What is kept of it once compiled.
    public var file: GeoFile {
        GeoFile(
            path: database.path, identity: database.identity, databaseType: database.databaseType,
            recordCount: database.recordCount, locationCount: locations.records.count)
    }
}
