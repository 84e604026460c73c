import DNSWire
import Foundation
import Steering
import Yams

/// The load-balancing part of the config: `geo`, `regions`, `pools`, `names`, `admin`.
///
/// ```yaml
/// geo:
///   database: ../geo/sample.mmdb      # City or Country database (MaxMind format); relative to this file
///   asn-database: GeoLite2-ASN.mmdb   # optional, for `asn` rules
/// regions:
///   us-east: { coordinates: [39.0, -77.5], bias: 0 }
/// pools:
///   na:
///     region: us-east
///     slow-start: 60                  # seconds to ramp back after recovering
///     up-threshold: 0.5               # fraction of endpoints up for the pool to count as up
///     endpoints:
///       - { name: na-1, address: 192.0.2.10, weight: 1, capacity: 1 }
/// names:
///   www.example.com:
///     policy: [health, geo, failover, weighted]
///     pools: [na, eu, ap]
///     ttl: [10, 60]                   # low (while degraded), high
///     geo: { continent: { EU: [eu-central] }, default: [us-east] }
/// admin:
///   listen: 127.0.0.1:5380
///   token-file: admin.token
///   state-file: lodestar.state
/// ```
extension Config {
    static let steeringKeys = ["geo", "regions", "pools", "names", "admin", "checks", "prober"]

    mutating func loadSteering(_ top: Section, base: String) throws {
        let file = top.file
        func path(_ p: String) -> String { p.hasPrefix("/") ? p : (base as NSString).appendingPathComponent(p) }
        if let geo = try top.section("geo") {
            try geo.allow(["database", "asn-database"])
            if let (v, _) = try geo.string("database") { geoDatabase = path(v) }
            if let (v, _) = try geo.string("asn-database") { asnDatabase = path(v) }
        }
        if let admin = try top.section("admin") {
            try admin.allow(["listen", "token-file", "state-file", "socket"])
            if let (v, line) = try admin.string("socket") {
                guard !v.isEmpty, v.utf8.count < 108 else {
                    throw ConfigError(
                        file: file, line: line, message: "admin socket \"\(v)\" must be a path of at most 107 octets")
                }
                adminSocket = path(v)
            }
            if let (v, line) = try admin.string("listen") {
                guard ListenAddress.parse(v) != nil else {
                    throw ConfigError(file: file, line: line, message: "admin listen address \"\(v)\" is not ADDR:PORT")
                }
                adminListen = v
            }
            if let (v, _) = try admin.string("token-file") { adminTokenFile = path(v) }
            if let (v, _) = try admin.string("state-file") { stateFile = path(v) }
        }
        try loadProber(top, base: base)
        let templates = try Config.checkTemplates(top)
        var m = SteeringModel()
        var regionLines: [String: Int] = [:]
        if let regions = try top.section("regions") {
            for (name, node, line) in try regions.entries() {
                let r = try Section(node, file: file, name: "region \(name)")
                try r.allow(["coordinates", "bias"])
                var region = Region(name: name)
                if let (c, l) = try r.numbers("coordinates") {
                    guard c.count == 2, (-90...90).contains(c[0]), (-180...180).contains(c[1]) else {
                        throw ConfigError(
                            file: file, line: l, message: "coordinates of region \(name) must be [latitude, longitude]")
                    }
                    region.latitude = c[0]
                    region.longitude = c[1]
                }
                if let b = try r.number("bias", range: -99...99) { region.bias = b }
                regionLines[name] = line
                m.regions.append(region)
            }
        }
        if let pools = try top.section("pools") {
            for (name, node, line) in try pools.entries() {
                let p = try Section(node, file: file, name: "pool \(name)")
                try p.allow([
                    "region", "endpoints", "weight", "capacity", "up-threshold", "slow-start", "check", "checks",
                    "check-mode"
                ])
                guard let (rname, rline) = try p.string("region") else {
                    throw ConfigError(file: file, line: line, message: "pool \(name) needs a region")
                }
                let r = try regionIndex(rname, rline, m, file)
                guard let (eps, _) = p.value("endpoints"), let seq = eps.sequence, !seq.isEmpty else {
                    throw ConfigError(file: file, line: line, message: "pool \(name) needs a list of endpoints")
                }
                var indices: [Int] = []
                var kinds = Set<Bool>()
                for item in seq {
                    let e = try Section(item, file: file, name: "endpoint of pool \(name)")
                    try e.allow([
                        "name", "address", "cname", "weight", "capacity", "probe", "check", "checks", "check-mode"
                    ])
                    let l = e.line(item)
                    let target: EndpointTarget
                    let text: String
                    if let (a, al) = try e.string("address") {
                        guard let bytes = IPAddress.parse(a) else {
                            throw ConfigError(file: file, line: al, message: "\"\(a)\" is not an IPv4 or IPv6 address")
                        }
                        target = .address(bytes)
                        text = a
                        kinds.insert(true)
                    } else if let (c, cl) = try e.string("cname") {
                        guard let wire = Name.fromText(c.hasSuffix(".") ? c : c + ".") else {
                            throw ConfigError(file: file, line: cl, message: "\"\(c)\" is not a domain name")
                        }
                        target = .cname(Name.lowercased(wire))
                        text = c
                        kinds.insert(false)
                    } else {
                        throw ConfigError(file: file, line: l, message: "an endpoint needs an address or a cname")
                    }
                    let ename = try e.string("name")?.0 ?? text
                    if m.endpoint(named: ename) != nil {
                        throw ConfigError(
                            file: file, line: l,
                            message: "endpoint name \"\(ename)\" is used twice; give each a unique name")
                    }
                    let weight = try e.number("weight", range: 0...1_000_000) ?? 1
                    let capacity = try e.number("capacity", range: 0...1_000_000_000)
                    var probe: String? = nil
                    if case .address = target { probe = text }
                    if let (a, al) = try e.string("probe") {
                        guard IPAddress.parse(a) != nil else {
                            throw ConfigError(
                                file: file, line: al, message: "probe address \"\(a)\" is not an IPv4 or IPv6 address")
                        }
                        probe = a
                    }
                    var endpoint = Endpoint(
                        name: ename, target: target, weight: weight, capacity: capacity, pool: m.pools.count)
                    let owner = "endpoint \(ename)"
                    if let (checks, mode) = try e.checks(templates: templates, address: probe, owner: owner)
                        ?? p.checks(templates: templates, address: probe, owner: owner)
                    {
                        endpoint.checks = checks
                        endpoint.checkMode = mode
                    }
                    indices.append(m.endpoints.count)
                    m.endpoints.append(endpoint)
                }
                if kinds.count > 1 {
                    throw ConfigError(
                        file: file, line: line,
                        message: "pool \(name) mixes addresses and CNAMEs; put them in separate pools")
                }
                if kinds == [false] && indices.count > 1 {
                    throw ConfigError(
                        file: file, line: line,
                        message: "pool \(name) has more than one CNAME endpoint (a name holds one CNAME)")
                }
                let capacity =
                    try p.number("capacity", range: 0...1e12) ?? indices.reduce(0) { $0 + m.endpoints[$1].capacity }
                m.pools.append(
                    Pool(
                        name: name, region: r, endpoints: indices,
                        weight: try p.number("weight", range: 0...1_000_000) ?? 1, capacity: capacity,
                        upThreshold: try p.number("up-threshold", range: 0.001...1) ?? 0.5,
                        slowStart: try p.number("slow-start", range: 0...86400) ?? 0))
            }
        }
        if let names = try top.section("names") {
            for (nameText, node, line) in try names.entries() {
                m.names.append(try parseName(nameText, node, line: line, model: m, file: file))
            }
        }
        steering = m
    }

    private func parseName(_ text: String, _ node: Node, line: Int, model m: SteeringModel, file: String) throws
        -> SteeredName
    {
        let s = try Section(node, file: file, name: "name \(text)")
        try s.allow(["types", "ttl", "policy", "pools", "answers", "sticky", "failover", "all-down", "geo", "latency"])
        let fqdn = text.hasSuffix(".") ? text : text + "."
        guard let wire = Name.fromText(fqdn), !text.contains("*") else {
            throw ConfigError(
                file: file, line: line, message: "\"\(text)\" is not a domain name (wildcards cannot be load-balanced)")
        }
        var types: [UInt16] = [RRType.a, RRType.aaaa]
        if let list = try s.strings("types") {
            types = try list.map { (t, l) in
                switch t.uppercased() {
                case "A": return RRType.a
                case "AAAA": return RRType.aaaa
                default:
                    throw ConfigError(
                        file: file, line: l,
                        message: "type \(t): only A and AAAA are load-balanced (CNAME endpoints answer both)")
                }
            }
        }
        var high: Double = 60
        var low: Double? = nil
        if let (v, l) = s.value("ttl") {
            if let n = v.scalar.flatMap({ Section.decimal($0.string) }) {
                high = n
            } else if let seq = v.sequence, seq.count == 2,
                let a = seq[0].scalar.flatMap({ Section.decimal($0.string) }),
                let b = seq[1].scalar.flatMap({ Section.decimal($0.string) })
            {
                low = a
                high = b
            } else {
                throw ConfigError(file: file, line: l, message: "ttl must be a number or [low, high]")
            }
            guard high >= 0, high <= 2_147_483_647, (low ?? 0) >= 0, (low ?? 0) <= high else {
                throw ConfigError(file: file, line: l, message: "ttl must satisfy 0 ≤ low ≤ high ≤ 2147483647")
            }
        }
        var chain: [PolicyStep] = [.health, .geo, .failover]
        if let list = try s.strings("policy") {
            chain = try list.map { (p, l) in
                guard let step = PolicyStep(rawValue: p) else {
                    throw ConfigError(
                        file: file, line: l,
                        message:
                            "unknown policy \"\(p)\" (known: \(PolicyStep.allCases.map(\.rawValue).joined(separator: ", ")))"
                    )
                }
                return step
            }
            let l = s.value("policy")!.1
            if Set(chain).count != chain.count {
                throw ConfigError(file: file, line: l, message: "a policy appears twice in the chain")
            }
            func at(_ p: PolicyStep) -> Int? { chain.firstIndex(of: p) }
            for order in [PolicyStep.geo, .latency, .health] {
                for select in [PolicyStep.failover, .weighted] {
                    if let a = at(order), let b = at(select), a > b {
                        throw ConfigError(
                            file: file, line: l,
                            message:
                                "\(order.rawValue) must come before \(select.rawValue): it orders or filters what \(select.rawValue) chooses from"
                        )
                    }
                }
            }
            if let g = at(.geo), let t = at(.latency), g > t {
                throw ConfigError(
                    file: file, line: l,
                    message:
                        "geo after latency would discard the latency order; put latency after geo (latency then reorders, geo breaks ties)"
                )
            }
            if let f = at(.failover), let w = at(.weighted), f > w {
                throw ConfigError(
                    file: file, line: l,
                    message: "failover must come before weighted: failover picks the pool, weighted the endpoints in it"
                )
            }
        }
        guard let poolList = try s.strings("pools"), !poolList.isEmpty else {
            throw ConfigError(file: file, line: line, message: "name \(text) needs a list of pools")
        }
        let pools = try poolList.map { (p, l) -> Int in
            guard let i = m.pool(named: p) else {
                throw ConfigError(
                    file: file, line: l,
                    message: "unknown pool \"\(p)\" (known: \(m.pools.map(\.name).joined(separator: ", ")))")
            }
            return i
        }
        if pools.count > SteeringTable.maxPoolsPerName {
            throw ConfigError(
                file: file, line: line, message: "name \(text) has more than \(SteeringTable.maxPoolsPerName) pools")
        }
        var n = SteeredName(
            name: fqdn, wire: Name.lowercased(wire), types: types, ttlHigh: UInt32(high),
            ttlLow: UInt32(low ?? min(high, 10)), chain: chain, pools: pools)
        n.line = line
        if let a = try s.number("answers", range: 0...Double(SteeringTable.maxAnswers)) { n.answers = Int(a) }
        if let (v, l) = s.value("sticky") {
            if v.scalar?.string == "true" {
                n.sticky = (24, 56)
            } else if v.scalar?.string == "false" {
                n.sticky = nil
            } else if let sub = try? Section(v, file: file, name: "sticky") {
                try sub.allow(["ipv4-prefix", "ipv6-prefix"])
                n.sticky = (
                    Int(try sub.number("ipv4-prefix", range: 0...32) ?? 24),
                    Int(try sub.number("ipv6-prefix", range: 0...128) ?? 56)
                )
            } else {
                throw ConfigError(
                    file: file, line: l, message: "sticky must be true, false or { ipv4-prefix, ipv6-prefix }")
            }
        }
        if let (v, l) = try s.string("failover") {
            switch v {
            case "ordered": n.spread = false
            case "spread": n.spread = true
            default: throw ConfigError(file: file, line: l, message: "failover must be ordered or spread")
            }
        }
        if let (v, l) = try s.string("all-down") {
            guard let mode = AllDownMode(rawValue: v) else {
                throw ConfigError(file: file, line: l, message: "all-down must be fail-open, last-resort or servfail")
            }
            n.allDown = mode
        }
        func regionList(_ node: Node) throws -> [Int] {
            let items = node.sequence.map(Array.init) ?? [node]
            return try items.map { item in
                try regionIndex(item.scalar?.string ?? "?", item.mark?.line ?? line, m, file)
            }
        }
        if let g = try s.section("geo") {
            try g.allow(["continent", "country", "subdivision", "asn", "nets", "default"])
            var rules = GeoRules()
            for (key, field) in [("continent", 0), ("country", 1), ("subdivision", 2)] {
                guard let sec = try g.section(key) else { continue }
                for (k, v, _) in try sec.entries() {
                    let list = try regionList(v)
                    switch field {
                    case 0: rules.continent[k.uppercased()] = list
                    case 1: rules.country[k.uppercased()] = list
                    default: rules.subdivision[k.uppercased()] = list
                    }
                }
            }
            if let sec = try g.section("asn") {
                for (k, v, l) in try sec.entries() {
                    guard let asn = UInt32(k.uppercased().replacingOccurrences(of: "AS", with: "")) else {
                        throw ConfigError(file: file, line: l, message: "\"\(k)\" is not an AS number")
                    }
                    rules.asn[asn] = try regionList(v)
                }
            }
            if let sec = try g.section("nets") {
                for (k, v, l) in try sec.entries() {
                    rules.nets.append((try prefix(k, line: l, file: file), try regionList(v)))
                }
            }
            if let (v, _) = g.value("default") { rules.defaultRegions = try regionList(v) }
            n.geo = rules
        }
        if let lat = try s.section("latency") {
            try lat.allow(["continent", "country", "nets", "default", "hysteresis"])
            var map = LatencyMap()
            func row(_ node: Node, _ l: Int) throws -> [Int: Double] {
                let sec = try Section(node, file: file, name: "latency row")
                var r: [Int: Double] = [:]
                for (region, v, rl) in try sec.entries() {
                    guard let ms = v.scalar.flatMap({ Section.decimal($0.string) }), ms >= 0 else {
                        throw ConfigError(file: file, line: rl, message: "RTT to \(region) must be milliseconds ≥ 0")
                    }
                    r[try regionIndex(region, rl, m, file)] = ms
                }
                return r
            }
            for key in ["continent", "country"] {
                guard let sec = try lat.section(key) else { continue }
                for (k, v, l) in try sec.entries() {
                    if key == "continent" {
                        map.continent[k.uppercased()] = try row(v, l)
                    } else {
                        map.country[k.uppercased()] = try row(v, l)
                    }
                }
            }
            if let sec = try lat.section("nets") {
                for (k, v, l) in try sec.entries() {
                    map.nets.append((try prefix(k, line: l, file: file), try row(v, l)))
                }
            }
            if let (v, l) = lat.value("default") { map.defaultRTT = try row(v, l) }
            if let h = try lat.number("hysteresis", range: 0...10_000) { map.hysteresis = h }
            n.latency = map
        }
        if n.has(.geo) && n.geo == nil { n.geo = GeoRules() }
        if n.has(.latency) && n.latency == nil {
            throw ConfigError(
                file: file, line: line, message: "name \(text) uses the latency policy but has no latency map")
        }
        return n
    }

    /// The index of region `name`, or an error at `line` listing the known regions.
    private func regionIndex(_ name: String, _ line: Int, _ m: SteeringModel, _ file: String) throws -> Int {
        guard let i = m.region(named: name) else {
            throw ConfigError(
                file: file, line: line,
                message: "unknown region \"\(name)\" (known: \(m.regions.map(\.name).joined(separator: ", ")))")
        }
        return i
    }

    private func prefix(_ text: String, line: Int, file: String) throws -> Prefix {
        guard let p = CIDR.parse(text) else {
            throw ConfigError(file: file, line: line, message: "\"\(text)\" is not a CIDR prefix")
        }
        return p
    }
}

extension Section {
    /// The entries of the mapping in file order: key, value, line.
    func entries() throws -> [(String, Node, Int)] {
        try mapping.map { (k, v) in
            guard let key = k.string else {
                throw ConfigError(file: file, line: line(k), message: "keys in \(name) must be strings")
            }
            return (key, v, line(k))
        }
    }

    func numbers(_ key: String) throws -> ([Double], Int)? {
        guard let (v, l) = value(key) else { return nil }
        guard let seq = v.sequence else {
            throw ConfigError(file: file, line: l, message: "\(key) must be a list of numbers")
        }
        return (
            try seq.map { item in
                guard let d = item.scalar.flatMap({ Section.decimal($0.string) }) else {
                    throw ConfigError(file: file, line: line(item), message: "\(key) must be a list of numbers")
                }
                return d
            }, l
        )
    }
}
