public import CLodestarSys
public import DNSWire

/// Response rate limiting settings (`rate-limit:`), in the style of knot's and BIND's RRL.
public struct RateLimitSettings: Sendable, Equatable {
    /// Responses per second to one source prefix; 0 turns limiting off.
    public var responsesPerSecond: Int = 100
    /// Responses a prefix may get at once above its rate (the bucket's depth).
    public var burst: Int = 200
    /// Every `slip`th limited response goes out truncated (TC, or BADCOOKIE to a client that sent
    /// a cookie) so that a real client retries; the rest are dropped. 0 drops them all, 1 truncates all.
    public var slip: Int = 2
    /// The source prefixes that share one bucket.
    public var ipv4PrefixLength: Int = 24
    public var ipv6PrefixLength: Int = 56
    /// Count and log what would be limited, and send it anyway.
    public var logOnly = false

    public init() {}

    public var enabled: Bool { responsesPerSecond > 0 }
}

/// The rate limiter's table: fixed memory (`slots` words, 2 MiB by default) whatever the number of
/// clients, shared by every UDP loop, updated without locks (`lodestar_rrl_admit`).
///
/// Keyed on the address the datagram came from, masked to its prefix: never the ECS address,
/// which anyone can write.
public final class RateLimiter: @unchecked Sendable {
    public static let defaultSlots = 1 << 18
    @usableFromInline let table: UnsafeMutablePointer<UInt64>
    @usableFromInline let mask: UInt64
    @usableFromInline let seed: UInt64

    public init(slots: Int = RateLimiter.defaultSlots) {
        precondition(slots > 0 && slots & (slots - 1) == 0, "slots must be a power of two")
        table = .allocate(capacity: slots)
        table.initialize(repeating: 0, count: slots)
        mask = UInt64(slots - 1)
        var s: UInt64 = 0
        _ = withUnsafeMutableBytes(of: &s) { lodestar_random($0.baseAddress, 8) }
        seed = s | 1
    }

    deinit { table.deallocate() }

    /// The settings in the units the table works in, computed once per snapshot.
    public struct Parameters: Sendable, Equatable {
        public let enabled: Bool
        @usableFromInline let interval: UInt64
        @usableFromInline let tolerance: UInt64
        @usableFromInline let v4Mask: UInt64
        @usableFromInline let v6Mask: UInt64

        public init(_ s: RateLimitSettings) {
            enabled = s.enabled
            // In 64 ns units: at most 15.6M responses per second per prefix can be told apart.
            let perResponse = s.enabled ? max(1, 15_625_000 / UInt64(s.responsesPerSecond)) : 1
            interval = perResponse
            tolerance = perResponse * UInt64(max(0, s.burst - 1))
            v4Mask = s.ipv4PrefixLength == 0 ? 0 : ~UInt64(0) << UInt64(64 - min(32, s.ipv4PrefixLength))
            v6Mask = s.ipv6PrefixLength == 0 ? 0 : ~UInt64(0) << UInt64(64 - min(64, s.ipv6PrefixLength))
        }
    }

    /// Whether a response to `client` may go now (monotonic nanoseconds); charges its prefix.
    /// Inlined into the receive loops: a hash, two loads and a compare-and-swap per response.
    @inlinable @inline(__always)
    public func admit(_ client: ClientAddress, now: UInt64, _ p: Parameters) -> Bool {
        guard p.enabled else { return true }
        let prefix = client.octets.0 & (client.family == 4 ? p.v4Mask : p.v6Mask)
        var h = (prefix ^ seed) &* 0x9E37_79B9_7F4A_7C15
        h ^= UInt64(client.family) &* 0xC2B2_AE3D_27D4_EB4F
        h ^= h >> 29
        h &*= 0xBF58_476D_1CE4_E5B9
        h ^= h >> 32
        return lodestar_rrl_admit(table, mask, h, now, p.interval, p.tolerance) != 0
    }

    /// The prefix a client is limited under, for logs ("192.0.2.0/24").
    public static func prefixText(_ client: ClientAddress, _ s: RateLimitSettings) -> String {
        let bits = client.family == 4 ? s.ipv4PrefixLength : s.ipv6PrefixLength
        var b = client.bytes
        for i in b.indices {
            let keep = max(0, min(8, bits - 8 * i))
            b[i] &= keep == 8 ? 0xFF : UInt8(truncatingIfNeeded: 0xFF << (8 - keep))
        }
        if client.family == 4 { return b.map(String.init).joined(separator: ".") + "/\(bits)" }
        var groups: [String] = []
        for i in stride(from: 0, to: b.count, by: 2) {
            groups.append(String(UInt16(b[i]) << 8 | UInt16(b[i + 1]), radix: 16))
        }
        return groups.joined(separator: ":") + "/\(bits)"
    }
}
