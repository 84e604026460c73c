/// The overrides in force, by name so they survive reloads that renumber things.
public struct AdminOverrides: Sendable, Equatable, Codable {
    public var regions: [String: AdminOverride] = [:]
    public var pools: [String: AdminOverride] = [:]
    public var endpoints: [String: AdminOverride] = [:]

    public init() {}

    public var isEmptyOverrides: Bool { regions.isEmpty && pools.isEmpty && endpoints.isEmpty }
}
