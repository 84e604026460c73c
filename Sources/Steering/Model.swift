/// The load-balancing model: regions, pools of endpoints, and the names answered from them.
///
/// Built from the config (see `Server/SteeringConfig.swift`), validated there, immutable here.
/// Indices tie the parts together: a pool names its region by index, an endpoint its pool.

/// A place traffic can go: a data centre or cloud region, with coordinates for distance ordering.
public struct Region: Sendable, Equatable {
    public var name: String
    public var latitude: Double?
    public var longitude: Double?
    /// Geoproximity bias, −99…99 (Route 53's): positive draws clients from farther away.
    public var bias: Double = 0

    public init(name: String, latitude: Double? = nil, longitude: Double? = nil, bias: Double = 0) {
        self.name = name
        self.latitude = latitude
        self.longitude = longitude
        self.bias = bias
    }
}

/// What an endpoint answers with.
public enum EndpointTarget: Sendable, Equatable {
    /// 4 or 16 octets: an A or AAAA record.
    case address([UInt8])
    /// A CNAME target in wire form, lower-cased.
    case cname([UInt8])

    /// 4, 6, or 0 for a CNAME (usable for either family).
    public var family: Int {
        switch self {
        case .address(let a): return a.count == 4 ? 4 : 6
        case .cname: return 0
        }
    }
}

public struct Endpoint: Sendable, Equatable {
    /// Unique across the config: the admin API and metrics name endpoints by it.
    public var name: String
    public var target: EndpointTarget
    public var weight: Double = 1
    /// Share of traffic this endpoint can take when others fail; defaults to its weight.
    public var capacity: Double
    public var pool: Int = 0
    /// Health checks the prober runs for this endpoint (none: up unless the admin or an external
    /// input says otherwise).
    public var checks: [CheckSpec] = []
    /// Whether every check must pass (`all`, the default) or one is enough (`any`).
    public var checkMode: CheckMode = .all

    public init(name: String, target: EndpointTarget, weight: Double = 1, capacity: Double? = nil, pool: Int = 0) {
        self.name = name
        self.target = target
        self.weight = weight
        self.capacity = capacity ?? weight
        self.pool = pool
    }
}

/// The endpoints of one region that a name can answer with.
public struct Pool: Sendable, Equatable {
    public var name: String
    public var region: Int
    /// Indices into `SteeringModel.endpoints`.
    public var endpoints: [Int]
    /// Share when a name spreads traffic over pools by weight (`weighted` without `failover`).
    public var weight: Double = 1
    /// Traffic the pool can take when another region fails; defaults to the sum of its endpoints'.
    public var capacity: Double
    /// A pool is up while at least this fraction of its endpoints is up (gdnsd's `up_thresh`).
    public var upThreshold: Double = 0.5
    /// After recovering, a pool's and its endpoints' share ramps linearly over this many seconds.
    public var slowStart: Double = 0

    public init(name: String, region: Int, endpoints: [Int], weight: Double = 1, capacity: Double,
                 upThreshold: Double = 0.5, slowStart: Double = 0) {
        self.name = name
        self.region = region
        self.endpoints = endpoints
        self.weight = weight
        self.capacity = capacity
        self.upThreshold = upThreshold
        self.slowStart = slowStart
    }
}

/// One step of a name's policy chain, evaluated in order (like NS1's filter chain).
public enum PolicyStep: String, Sendable, CaseIterable {
    /// Drops endpoints the prober or the admin marks down; pools below their threshold.
    case health
    /// Orders regions by rules (continent, country, subdivision, ASN, CIDR) or distance.
    case geo
    /// Orders regions by expected RTT, with hysteresis.
    case latency
    /// Keeps the first pool that is up (or spreads its share when `spread`).
    case failover
    /// Picks endpoints (and pools, without failover) by weighted random.
    case weighted
}

/// What a name answers when no pool is usable.
public enum AllDownMode: String, Sendable {
    /// Every configured endpoint of the queried family (gdnsd, Route 53).
    case failOpen = "fail-open"
    /// The RRset in the zone file at the name, or NODATA.
    case lastResort = "last-resort"
    case servfail
}

/// An address prefix (for CIDR maps), bits in network order, IPv4 in the top 32 bits of `high`.
public struct Prefix: Sendable, Equatable, CustomStringConvertible {
    public var family: Int
    public var high: UInt64
    public var low: UInt64
    public var length: Int

    public init(family: Int, high: UInt64, low: UInt64, length: Int) {
        self.family = family
        self.length = length
        let (h, l) = Prefix.mask(length: length)
        self.high = high & h
        self.low = low & l
    }

    /// The masks of the first `length` bits (0…128) of the two address halves.
    @inlinable @inline(__always)
    public static func mask(length: Int) -> (UInt64, UInt64) {
        let h: UInt64 = length >= 64 ? ~0 : (length == 0 ? 0 : ~0 << (64 - UInt64(length)))
        let l: UInt64 = length >= 128 ? ~0 : (length <= 64 ? 0 : ~0 << (128 - UInt64(length)))
        return (h, l)
    }

    /// Bit `i` (0 = most significant) of the prefix.
    public func bit(_ i: Int) -> Int {
        i < 64 ? Int(high >> (63 - UInt64(i)) & 1) : Int(low >> (127 - UInt64(i)) & 1)
    }

    /// Whether the prefix covers an address of the same family.
    public func contains(family f: Int, high h: UInt64, low l: UInt64) -> Bool {
        guard f == family else { return false }
        let (mh, ml) = Prefix.mask(length: length)
        return h & mh == high && l & ml == low
    }

    public var description: String {
        if family == 4 {
            let v = UInt32(truncatingIfNeeded: high >> 32)
            return "\(v >> 24).\(v >> 16 & 0xFF).\(v >> 8 & 0xFF).\(v & 0xFF)/\(length)"
        }
        var groups: [String] = []
        for i in 0..<8 {
            let word = i < 4 ? high >> (48 - 16 * UInt64(i)) : low >> (48 - 16 * UInt64(i - 4))
            groups.append(String(word & 0xFFFF, radix: 16))
        }
        return groups.joined(separator: ":") + "/\(length)"
    }
}

/// Geo rules of one name: the most specific match wins (nets, ASN, subdivision, country,
/// continent, default); without any, regions by great-circle distance from the client.
public struct GeoRules: Sendable, Equatable {
    /// Region index lists, keyed by continent code (`EU`), country (`DE`), country-subdivision (`US-CA`), ASN.
    public var continent: [String: [Int]] = [:]
    public var country: [String: [Int]] = [:]
    public var subdivision: [String: [Int]] = [:]
    public var asn: [UInt32: [Int]] = [:]
    /// CIDR map, longest prefix wins; overrides the database (gdnsd's `nets`).
    public var nets: [(Prefix, [Int])] = []
    public var defaultRegions: [Int]? = nil

    public init() {}

    public static func == (a: GeoRules, b: GeoRules) -> Bool {
        a.continent == b.continent && a.country == b.country && a.subdivision == b.subdivision && a.asn == b.asn
            && a.defaultRegions == b.defaultRegions && a.nets.count == b.nets.count
            && zip(a.nets, b.nets).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
    }
}

/// Expected RTT in milliseconds from a client's location to each region (by region index).
public struct LatencyMap: Sendable, Equatable {
    public var continent: [String: [Int: Double]] = [:]
    public var country: [String: [Int: Double]] = [:]
    public var nets: [(Prefix, [Int: Double])] = []
    public var defaultRTT: [Int: Double] = [:]
    /// RTTs within this many milliseconds of the best count as equal: the earlier order stands.
    public var hysteresis: Double = 10

    public init() {}

    public static func == (a: LatencyMap, b: LatencyMap) -> Bool {
        a.continent == b.continent && a.country == b.country && a.defaultRTT == b.defaultRTT
            && a.hysteresis == b.hysteresis && a.nets.count == b.nets.count
            && zip(a.nets, b.nets).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
    }
}

/// A load-balanced name.
public struct SteeredName: Sendable {
    public var name: String
    /// Lower-case wire form.
    public var wire: [UInt8]
    /// Query types answered by the policy (A, AAAA); others come from the zone.
    public var types: [UInt16]
    /// TTL while everything is healthy, and while anything the name depends on is degraded.
    public var ttlHigh: UInt32
    public var ttlLow: UInt32
    public var chain: [PolicyStep]
    /// Pool indices, in configured order.
    public var pools: [Int]
    public var geo: GeoRules? = nil
    public var latency: LatencyMap? = nil
    /// Endpoints per answer; 0 = every usable endpoint of the chosen pool.
    public var answers: Int = 1
    /// Sticky per client subnet (consistent hashing) when set: prefix lengths for IPv4 and IPv6.
    public var sticky: (v4: Int, v6: Int)? = nil
    /// Failover spreads a failed pool's share over the others by capacity instead of the next one taking all.
    public var spread: Bool = false
    public var allDown: AllDownMode = .failOpen
    /// Where the name was declared, for messages.
    public var line: Int = 0

    public init(name: String, wire: [UInt8], types: [UInt16], ttlHigh: UInt32, ttlLow: UInt32, chain: [PolicyStep],
                 pools: [Int]) {
        self.name = name
        self.wire = wire
        self.types = types
        self.ttlHigh = ttlHigh
        self.ttlLow = ttlLow
        self.chain = chain
        self.pools = pools
    }

    public func has(_ step: PolicyStep) -> Bool { chain.contains(step) }
}

/// Everything the config says about load balancing.
public struct SteeringModel: Sendable {
    public var regions: [Region] = []
    public var pools: [Pool] = []
    public var endpoints: [Endpoint] = []
    public var names: [SteeredName] = []

    public init() {}

    public func region(named n: String) -> Int? { regions.firstIndex { $0.name == n } }
    public func pool(named n: String) -> Int? { pools.firstIndex { $0.name == n } }
    public func endpoint(named n: String) -> Int? { endpoints.firstIndex { $0.name == n } }
}

/// How an endpoint combines several checks.
public enum CheckMode: String, Sendable, Equatable {
    case all, any
}

/// One health check of one endpoint, as configured: where to probe, how, and how often.
public struct CheckSpec: Sendable, Equatable, Hashable {
    public enum Kind: String, Sendable, Equatable, Hashable, CaseIterable {
        case tcp, http, https, dns
    }

    public var kind: Kind
    /// The address probed: the check's `address`, else the endpoint's `probe`, else its answer address.
    public var address: String
    public var port: Int
    /// Seconds between the starts of two checks, and the deadline of one.
    public var interval: Double = 10
    public var timeout: Double = 5
    /// Each check starts up to `jitter × interval` later than due, spreading load on the origins.
    public var jitter: Double = 0.1
    public var policy = CheckPolicy()
    /// The local address probes are sent from (a POP with several), or nil for the kernel's choice.
    public var source: String? = nil
    // HTTP and HTTPS.
    public var path = "/"
    /// The Host header (and the TLS server name unless `sni` is set); default the address.
    public var host: String? = nil
    public var sni: String? = nil
    /// Status codes that pass (inclusive ranges); default 200–399 (Route 53: 2xx and 3xx).
    public var expectStatus: [ClosedRange<Int>] = [200...399]
    /// A substring the first `bodyLimit` bytes of the response body must contain.
    public var expectBody: String? = nil
    /// Certificate validation (chain, dates, name), on by default.
    public var verifyTLS = true
    /// PEM file of trust roots used instead of the system's.
    public var caFile: String? = nil
    /// The check fails when the certificate expires in fewer days than this (0: only when expired).
    public var certMinDays: Double = 0
    // DNS.
    public var query: String = "."
    public var qtype: UInt16 = 6
    /// Rcodes that pass (default NOERROR).
    public var expectRcode: [UInt8] = [0]
    /// The reply must carry at least one answer record.
    public var expectAnswer = false

    public static let bodyLimit = 4096

    public init(kind: Kind, address: String, port: Int) {
        self.kind = kind
        self.address = address
        self.port = port
    }

    /// `http://192.0.2.1:80/health`, `tcp://[2001:db8::1]:443`, `dns://127.0.0.1:53/example.com/SOA`.
    public var target: String {
        let a = address.contains(":") ? "[\(address)]" : address
        switch kind {
        case .tcp: return "tcp://\(a):\(port)"
        case .http, .https: return "\(kind.rawValue)://\(a):\(port)\(path)"
        case .dns: return "dns://\(a):\(port)/\(query)"
        }
    }
}
