/// An endpoint's health as the prober sees it; `up == nil`: nothing known (counted up).
public struct EndpointObservation: Sendable, Equatable {
    public var endpoint: String
    public var up: Bool?
    public var reason: String

    public init(endpoint: String, up: Bool?, reason: String) {
        self.endpoint = endpoint
        self.up = up
        self.reason = reason
    }
}
