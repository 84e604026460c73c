/// What an override applies to: the path segment of `POST /v1/{regions|pools|endpoints}/NAME`,
/// and of the override's key in etcd.
public enum OverrideKind: String, Sendable, CaseIterable {
    case regions, pools, endpoints
}
