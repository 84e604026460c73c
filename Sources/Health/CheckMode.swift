/// How an endpoint combines several checks.
public enum CheckMode: String, Sendable, Equatable {
    case all, any
}
