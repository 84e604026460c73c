/// How the POPs' votes on an endpoint become its health.
package enum HealthPolicy: String, Sendable, CaseIterable {
    /// This POP's own verdict (each POP decides alone, as without a cluster).
    case local
    /// Down when more than `quorum` of the POPs that voted recently say down (Cloudflare: more
    /// than half; Route 53 inverts it: up when more than 18% say up).
    case quorum
    /// Up while any POP says up.
    case anyUp = "any-up"
    /// Up only while every POP that voted says up.
    case allUp = "all-up"
}
