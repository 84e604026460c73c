/// How an endpoint's checks and its external input make one verdict, as one list of states
/// combined by the endpoint's check mode: `all` is down when any state is down (the first down
/// one's reason) and up when every one is up; `any` is up when any is up and down when every one
/// is down (their reasons joined). Otherwise, or with no state at all, nothing is known (`nil`,
/// counted up).
///
/// External input comes from the admin API (or the cluster) and from the external file: up to two
/// states, kept apart so that neither replaces the other.
///
/// The checks arrive already combined (`checks`: the prober's verdict over the endpoint's
/// `count` checks, or the cluster's decision over those verdicts), which combining again with the
/// external state gives the same as combining every state at once.
public enum EndpointVerdict {
    public static func combine(
        mode: CheckMode, count: Int, checks: (up: Bool?, reason: String)?, external: [(up: Bool, reason: String)]
    ) -> (up: Bool?, reason: String) {
        guard !external.isEmpty else { return checks ?? (nil, "not checked") }
        let xs = external.map { (up: $0.up, reason: "external: \($0.reason)") }
        // Without checks the external states are the only ones.
        guard count > 0 else { return combine(mode: mode, states: xs.map { (Bool?.some($0.up), $0.reason) }) }
        let c = checks ?? (nil, "not checked yet")
        switch mode {
        case .all:
            if c.up == false { return c }
            if let d = xs.first(where: { !$0.up }) { return (false, d.reason) }
            if c.up == true { return (true, "all \(count + xs.count) checks pass") }
        case .any:
            if c.up == true { return c }
            if let u = xs.first(where: { $0.up }) { return (true, u.reason) }
            if c.up == false { return (false, ([c.reason] + xs.map(\.reason)).joined(separator: "; ")) }
        }
        return (nil, "not checked yet")
    }

    /// The verdict of one endpoint's checks alone (the prober's): each check's state (`nil`: no
    /// result yet) and reason, in configured order.
    public static func combine(mode: CheckMode, states: [(up: Bool?, reason: String)]) -> (up: Bool?, reason: String) {
        guard !states.isEmpty else { return (nil, "not checked") }
        let down = states.filter { $0.up == false }
        let up = states.filter { $0.up == true }
        switch mode {
        case .all:
            if let d = down.first { return (false, d.reason) }
            if up.count == states.count {
                return (true, states.count == 1 ? states[0].reason : "all \(states.count) checks pass")
            }
        case .any:
            if let u = up.first { return (true, u.reason) }
            if down.count == states.count { return (false, down.map(\.reason).joined(separator: "; ")) }
        }
        return (nil, "not checked yet")
    }
}
