/// Health of an endpoint said by something other than this server's checks: the admin API (or
/// the cluster's shared copy of it), or a line of the watched external file. Where it came from is
/// which of the board's maps holds it (`HealthBoard.external`, `fileExternal`).
public struct ExternalInput: Sendable, Equatable {
    public var up: Bool
    public var reason: String
    /// Monotonic seconds after which the input is ignored.
    public var expires: Double

    public init(up: Bool, reason: String, expires: Double) {
        self.up = up
        self.reason = reason
        self.expires = expires
    }
}
