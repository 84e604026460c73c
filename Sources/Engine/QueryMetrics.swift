import CLodestarSys
import DNSWire

/// Query counters for `/metrics`: by transport and rcode, by query type, and ECS use. Each thread
/// bumps its own shard (no cache line shared between listener threads); readers sum the shards.
/// Where each counter lives in a shard of `QueryMetrics`.
public enum MetricSlot: Sendable {
    /// Queries by transport and rcode (the low 4 bits): slots 0–31.
    case query(Transport, rcode: UInt8)
    /// Queries by type (`QueryMetrics.typeIndex`): slots 32–49.
    case type(Int)
    case ecs
    /// UDP answer cache: responses reused, responses computed by the engine after a lookup, and
    /// responses computed without one (the cache sampling while its hit rate is low).
    case cacheHit, cacheMiss, cacheSkip
    /// UDP responses the kernel refused as larger than the interface MTU, answered again smaller.
    case udpTooBig
    case rateLimited(RateLimitOutcome)
    /// Queries carrying a COOKIE option.
    case cookie
    case proxy(ProxyOutcome)

    /// Response rate limiting: responses over their prefix's rate (`limited`), of those the ones
    /// sent truncated or as BADCOOKIE (`slipped`), dropped, sent anyway as the client proved its
    /// address with a server cookie or is on the exempt list (`exempt`), or sent in log-only mode.
    public enum RateLimitOutcome: Int, CaseIterable, Sendable {
        case slipped = 0
        case dropped, exempt, logOnly
        var label: String { ["slipped", "dropped", "exempt", "log-only"][rawValue] }
    }

    /// PROXY protocol v2: messages from allowed peers carrying a header (`proxied`), dropped for
    /// lack of a valid one (`no-header`), and dropped as a header from a peer not allowed (`not-allowed`).
    public enum ProxyOutcome: Int, CaseIterable, Sendable {
        case proxied = 0
        case noHeader, notAllowed
        var label: String { ["proxied", "no-header", "not-allowed"][rawValue] }
    }

    /// The slot's offset in a shard (under `QueryMetrics.stride`).
    @inline(__always)
    var offset: Int {
        switch self {
        case .query(let t, let rcode): return (t == .udp ? 0 : 16) + Int(rcode & 0xF)
        case .type(let i): return 32 + i
        case .ecs: return 64
        case .cacheHit: return 65
        case .cacheMiss: return 66
        case .cacheSkip: return 67
        case .udpTooBig: return 68
        case .rateLimited(let o): return 69 + o.rawValue
        case .cookie: return 73
        case .proxy(let o): return 74 + o.rawValue
        }
    }
}

/// Query counters for `/metrics`: by transport and rcode, by query type, and ECS use. Each thread
/// bumps its own shard (no cache line shared between listener threads); readers sum the shards.
/// One per server, handed from snapshot to snapshot (`Snapshot.metrics`), so reloads keep the counts.
public final class QueryMetrics: @unchecked Sendable {
    static let shards = 64
    /// Counters per shard (`MetricSlot.offset` below it), padded to keep shards on their own cache lines.
    static let stride = 128
    let counters: UnsafeMutablePointer<UInt64>

    /// The query types counted by name; every other type is counted as "other".
    static let types: [UInt16] = [
        RRType.a, RRType.ns, RRType.cname, RRType.soa, RRType.ptr, RRType.mx, RRType.txt,
        RRType.aaaa, RRType.srv, RRType.ds, 48, 64, 65, 257, RRType.any,
        RRType.axfr, RRType.ixfr
    ]

    public init() {
        counters = .allocate(capacity: Self.shards * Self.stride)
        counters.initialize(repeating: 0, count: Self.shards * Self.stride)
    }

    @inline(__always)
    static func typeIndex(_ t: UInt16) -> Int {
        // In the order of `types`.
        switch t {
        case RRType.a: return 0
        case RRType.ns: return 1
        case RRType.cname: return 2
        case RRType.soa: return 3
        case RRType.ptr: return 4
        case RRType.mx: return 5
        case RRType.txt: return 6
        case RRType.aaaa: return 7
        case RRType.srv: return 8
        case RRType.ds: return 9
        case 48: return 10
        case 64: return 11
        case 65: return 12
        case 257: return 13
        case RRType.any: return 14
        case RRType.axfr: return 15
        case RRType.ixfr: return 16
        default: return 17
        }
    }

    /// One count in this thread's shard.
    @inline(__always)
    public func record(_ slot: MetricSlot) {
        lodestar_count_shard(counters + (Int(lodestar_shard()) * Self.stride + slot.offset), 1)
    }

    /// One query answered: by transport and rcode, by type, and whether it carried ECS.
    @inline(__always)
    func record(transport: Transport, rcode: UInt8, qtype: UInt16, ecs: Bool) {
        count(
            at: counters + Int(lodestar_shard()) * Self.stride, transport: transport, rcode: rcode, qtype: qtype,
            ecs: ecs)
    }

    /// A UDP response reused from the answer cache: counted as `record` counts it, and as a hit.
    @inline(__always)
    func recordCached(rcode: UInt8, qtype: UInt16, ecs: Bool) {
        let base = counters + Int(lodestar_shard()) * Self.stride
        count(at: base, transport: .udp, rcode: rcode, qtype: qtype, ecs: ecs)
        lodestar_count_shard(base + MetricSlot.cacheHit.offset, 1)
    }

    /// One query in the shard at `base`.
    @inline(__always)
    private func count(
        at base: UnsafeMutablePointer<UInt64>, transport: Transport, rcode: UInt8, qtype: UInt16, ecs: Bool
    ) {
        lodestar_count_shard(base + MetricSlot.query(transport, rcode: rcode).offset, 1)
        lodestar_count_shard(base + MetricSlot.type(Self.typeIndex(qtype)).offset, 1)
        if ecs { lodestar_count_shard(base + MetricSlot.ecs.offset, 1) }
    }

    func sum(_ slot: MetricSlot) -> UInt64 {
        var t: UInt64 = 0
        for s in 0..<Self.shards { t &+= lodestar_read(counters + (s * Self.stride + slot.offset)) }
        return t
    }

    /// Prometheus text lines.
    public func exposition() -> String {
        var out = "# HELP lodestar_queries_total DNS queries answered, by transport and response code.\n"
        out += "# TYPE lodestar_queries_total counter\n"
        for (ti, t) in ["udp", "tcp"].enumerated() {
            for r in 0..<16 {
                let v = sum(.query(ti == 0 ? .udp : .tcp, rcode: UInt8(r)))
                if v > 0 || r == 0 || r == 3 {
                    out += "lodestar_queries_total{transport=\"\(t)\",rcode=\"\(Rcode.name(r))\"} \(v)\n"
                }
            }
        }
        out += "# HELP lodestar_queries_by_type_total DNS queries answered, by query type.\n"
        out += "# TYPE lodestar_queries_by_type_total counter\n"
        for (i, t) in Self.types.enumerated() {
            out += "lodestar_queries_by_type_total{qtype=\"\(RRType.name(t))\"} \(sum(.type(i)))\n"
        }
        out += "lodestar_queries_by_type_total{qtype=\"other\"} \(sum(.type(17)))\n"
        out += "# HELP lodestar_ecs_queries_total Queries carrying an EDNS Client Subnet option.\n"
        out += "# TYPE lodestar_ecs_queries_total counter\n"
        out += "lodestar_ecs_queries_total \(sum(.ecs))\n"
        out +=
            "# HELP lodestar_answer_cache_total UDP responses reused from the answer cache (hit), computed after a "
            + "lookup (miss), or computed without one while the hit rate is low (skip).\n"
        out += "# TYPE lodestar_answer_cache_total counter\n"
        out += "lodestar_answer_cache_total{result=\"hit\"} \(sum(.cacheHit))\n"
        out += "lodestar_answer_cache_total{result=\"miss\"} \(sum(.cacheMiss))\n"
        out += "lodestar_answer_cache_total{result=\"skip\"} \(sum(.cacheSkip))\n"
        out +=
            "# HELP lodestar_udp_too_big_total UDP responses larger than the interface MTU (IPv4 is sent with DF), "
            + "answered again within 512 octets.\n"
        out += "# TYPE lodestar_udp_too_big_total counter\n"
        out += "lodestar_udp_too_big_total \(sum(.udpTooBig))\n"
        out +=
            "# HELP lodestar_rate_limited_total UDP responses over their source prefix's rate: sent truncated or as "
            + "BADCOOKIE (slipped), dropped, sent to a client with a valid server cookie or an exempt address (exempt), "
            + "or sent in log-only mode.\n"
        out += "# TYPE lodestar_rate_limited_total counter\n"
        for o in MetricSlot.RateLimitOutcome.allCases {
            out += "lodestar_rate_limited_total{action=\"\(o.label)\"} \(sum(.rateLimited(o)))\n"
        }
        out += "# HELP lodestar_cookie_queries_total Queries carrying a DNS COOKIE option (RFC 7873).\n"
        out += "# TYPE lodestar_cookie_queries_total counter\n"
        out += "lodestar_cookie_queries_total \(sum(.cookie))\n"
        out +=
            "# HELP lodestar_proxy_protocol_total UDP datagrams and TCP connections by their PROXY v2 header: from an "
            + "allowed peer with one (proxied), from an allowed peer without a valid one (no-header, dropped), with one "
            + "from a peer not allowed (not-allowed, dropped).\n"
        out += "# TYPE lodestar_proxy_protocol_total counter\n"
        for o in MetricSlot.ProxyOutcome.allCases {
            out += "lodestar_proxy_protocol_total{result=\"\(o.label)\"} \(sum(.proxy(o)))\n"
        }
        return out
    }
}
