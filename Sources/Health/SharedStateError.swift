/// Why a change to health state was not made, with a code the admin API turns into a status.
public struct SharedStateError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Code: String, Sendable {
        /// No region, pool, endpoint or anycast protocol of that name (404).
        case notFound = "not-found"
        /// The request makes no sense here, like a POP without a cluster (400).
        case invalid
        /// The shared store (etcd) could not take it: the change was made nowhere (503).
        case unavailable
    }

    public var code: Code
    public var description: String

    public init(_ code: Code, _ description: String) {
        self.code = code
        self.description = description
    }
}
