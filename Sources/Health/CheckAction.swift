/// What the owner of a check state must do after a result.
public enum CheckAction: Sendable, Equatable {
    case wentUp(reason: String)
    case wentDown(reason: String)
    /// Checks pass but the check is held down by damping until the given time (at the latest).
    case heldDown(until: Double, penalty: Double)
}
