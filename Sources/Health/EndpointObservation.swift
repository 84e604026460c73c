/// An endpoint's health as the prober sees it; `up == nil`: nothing known (counted up).
package struct EndpointObservation: Sendable, Equatable {
    package var endpoint: String
    package var up: Bool?
    package var reason: String

    package init(endpoint: String, up: Bool?, reason: String) {
        self.endpoint = endpoint
        self.up = up
        self.reason = reason
    }
}
