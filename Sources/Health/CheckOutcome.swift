/// A check result.
public enum CheckOutcome: Sendable, Equatable {
    case success(rtt: Double)
    case failure(reason: String)
    /// The check could not run here (out of file descriptors, buffers, local ports): it says
    /// nothing about the target, whose state stays as it was. A local shortage must never mark an
    /// origin down or withdraw a route.
    case local(reason: String)
}
