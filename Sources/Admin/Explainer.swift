import CLodestarSys
import DNSWire
package import Engine
import Foundation
import Geo
import Health
import Steering
import Zones

/// Why a client gets the answer it gets: every step of the decision, through the code the server
/// runs (`SteeringTable.decide` and `QueryEngine.respond`), for `lodestar explain` and the admin API.
package struct Explanation: Codable, Sendable {
    package var name: String
    package var type: String
    package var client: String
    /// The query carried the client as ECS (`--client IP/LEN`) rather than as the source address.
    package var ecs: Bool
    package var loadBalanced: Bool
    package var location: [String: String] = [:]
    package var steps: [String] = []
    package var rcode: String = ""
    package var answer: [String] = []
    package var ecsScope: Int? = nil
    package var ttl: UInt32? = nil
    /// Each endpoint of the name's pools: up or down and why (with a cluster: every POP's vote).
    package var health: [String]? = nil

    /// The text `lodestar explain` prints.
    package var text: String {
        var out = "\(name) \(type) for client \(client)\(ecs ? " (as ECS)" : " (as source address)")\n"
        if !location.isEmpty {
            out += "location:\n"
            for k in location.keys.sorted() { out += "  \(k): \(location[k]!)\n" }
        }
        if loadBalanced {
            if let health, !health.isEmpty {
                out += "health:\n"
                for h in health { out += "  \(h)\n" }
            }
            out += "decision:\n"
            for s in steps { out += "  \(s)\n" }
        } else {
            out += "not load-balanced: answered from the zone\n"
        }
        out += "answer: \(rcode)\n"
        for a in answer { out += "  \(a)\n" }
        if let ecsScope { out += "ECS scope: /\(ecsScope)\n" }
        if let ttl { out += "TTL: \(ttl)\n" }
        return out
    }
}

package enum Explainer {
    package struct Failure: Error, CustomStringConvertible {
        package var description: String
    }

    /// Explains `name type` for `client` ("IP" as the source address, "IP/LEN" as ECS).
    package static func explain(_ snapshot: Snapshot, name: String, type: String, client: String) throws -> Explanation
    {
        let fqdn = name.hasSuffix(".") ? name : name + "."
        guard let wire = Name.fromText(fqdn) else { throw Failure(description: "\"\(name)\" is not a domain name") }
        let qtype: UInt16
        switch type.uppercased() {
        case "A": qtype = RRType.a
        case "AAAA": qtype = RRType.aaaa
        default:
            guard let t = RRType.code(type.uppercased()) else { throw Failure(description: "unknown type \(type)") }
            qtype = t
        }
        // Empty parts kept: "/" or "/24" is an empty address, refused below (not an index past the end).
        let parts = client.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard let address = IPAddress.parse(parts[0]) else {
            throw Failure(description: "\"\(parts[0])\" is not an IP address")
        }
        let maxBits = address.count * 8
        var sourcePrefix: Int? = nil
        if parts.count == 2 {
            guard let l = Int(parts[1]), (0...maxBits).contains(l) else {
                throw Failure(description: "\"\(parts[1])\" is not a prefix length for \(parts[0])")
            }
            sourcePrefix = l
        }
        var e = Explanation(
            name: fqdn, type: RRType.name(qtype), client: client, ecs: sourcePrefix != nil, loadBalanced: false)
        // The address the decision sees: the ECS prefix (bits past it zero, as on the wire) or the source.
        var located = ClientAddress(bytes: address)
        if let sourcePrefix {
            let p = Prefix(
                family: address.count == 4 ? 4 : 6, high: located.octets.0, low: located.octets.1, length: sourcePrefix)
            located.octets = (p.high, p.low)
        }
        let seed = mix(UInt64(lodestar_monotonic_ns()))
        if let rt = snapshot.steering, case let n = wire.withUnsafeBytes({ rt.table.find($0) }), n >= 0 {
            let table = rt.table
            let cfg = table.names[n].config
            e.loadBalanced = cfg.types.contains(qtype)
            describeLocation(&e, table: table, name: n, client: located)
            var trace = TextTrace()
            trace.note("policy chain: " + cfg.chain.map(\.rawValue).joined(separator: " → "))
            if e.loadBalanced {
                _ = table.decide(
                    name: n, family: qtype == RRType.a ? 4 : 6, clientFamily: Int(located.family),
                    high: located.octets.0, low: located.octets.1, health: rt.health, now: lodestar_monotonic(),
                    random: seed, trace: &trace)
            }
            e.steps = trace.lines
            let m = table.model
            e.health = m.names[n].pools.flatMap { p in
                m.pools[p].endpoints.map { i in
                    "\(m.endpoints[i].name) (pool \(m.pools[p].name)): \(rt.health.endpoints[i].up ? "up" : "DOWN") — \(rt.health.endpoints[i].reason)"
                }
            }
        }
        // The response the server would send.
        var engine = snapshot.engine
        engine.fixedRandom = seed
        let packet = makeQuery(wire, qtype: qtype, ecs: sourcePrefix.map { (address, $0) })
        var out = [UInt8](repeating: 0, count: 65535)
        let source = sourcePrefix == nil ? ClientAddress(bytes: address) : ClientAddress(bytes: [127, 0, 0, 1])
        let len = packet.withUnsafeBytes { p in
            out.withUnsafeMutableBytes { o in
                engine.respond(to: p, into: o.baseAddress!, capacity: o.count, transport: .tcp, client: source)
            }
        }
        guard len > 0, let text = MessageText(Array(out[0..<len])) else { throw Failure(description: "no response") }
        e.rcode = text.rcode
        e.answer = text.answer + text.authority.map { "(authority) " + $0 }
        if sourcePrefix != nil { e.ecsScope = Int(scopeOf(Array(out[0..<len])) ?? 0) }
        if let first = text.answer.first {
            let fields = first.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if fields.count > 1 { e.ttl = UInt32(fields[1]) }
        }
        return e
    }

    static func describeLocation(_ e: inout Explanation, table: SteeringTable, name n: Int, client: ClientAddress) {
        let c = table.names[n]
        // The server keeps no database once its maps are compiled: opened again to name the place.
        var record: GeoRecord? = nil
        var asnNumber: UInt32? = nil
        if let city = table.geo.city {
            e.location["database"] = "\(city.path) (\(city.databaseType))"
            do {
                let found = try GeoReopener.shared.lookup(city.path, client.bytes)
                record = found.record
                if found.identity != city.identity {
                    e.location["note"] =
                        "the database file has changed since the answers were compiled; the location is from the file as it is now, the answer from the one loaded (reload to apply it)"
                }
                if let r = record {
                    // A database's strings are shown at most 64 characters long (a code is two or three).
                    func shown(_ v: String) -> String { v.count <= 64 ? v : String(v.prefix(64)) + "…" }
                    e.location["network"] = "/\(r.prefixLength) in the database"
                    if let v = r.continent { e.location["continent"] = shown(v) }
                    if let v = r.country { e.location["country"] = shown(v) }
                    if let v = r.subdivision { e.location["subdivision"] = shown(v) }
                    if let la = r.latitude, let lo = r.longitude {
                        e.location["coordinates"] = String(format: "%.4f, %.4f", la, lo)
                    }
                    if let v = r.asn { e.location["asn"] = "\(v)" }
                } else {
                    e.location["database"] = "no entry for this address"
                }
            } catch {
                e.location["database"] =
                    "\(city.path): cannot be opened now (\(error)); the answer is from the one loaded"
            }
        }
        if let asn = table.geo.asn {
            asnNumber = (try? GeoReopener.shared.lookup(asn.path, client.bytes))?.record?.asn
            if let v = asnNumber { e.location["asn"] = "\(v)" }
        }
        let family = Int(client.family)
        func longest<T>(_ nets: [(Prefix, T)]) -> Int? {
            var best: Int? = nil
            for (i, (p, _)) in nets.enumerated()
            where p.contains(family: family, high: client.octets.0, low: client.octets.1) {
                if best == nil || nets[best!].0.length < p.length { best = i }
            }
            return best
        }
        var facts = LocationFacts()
        facts.record = record
        facts.asn = asnNumber
        if c.config.has(.geo), let g = c.config.geo { facts.geoNet = longest(g.nets) }
        if c.config.has(.latency), let l = c.config.latency { facts.latencyNet = longest(l.nets) }
        if c.locationDependent {
            let (_, why) = Classifier(model: table.model, name: c.config).classify(facts)
            e.location["rule"] = why.joined(separator: "; ")
        }
    }

    /// A query packet: one question, EDNS with an ECS option when given.
    package static func makeQuery(_ name: [UInt8], qtype: UInt16, ecs: ([UInt8], Int)?) -> [UInt8] {
        var p: [UInt8] = [0x4C, 0x53, 0x00, 0x00, 0, 1, 0, 0, 0, 0, 0, 1]
        p += name
        p += [UInt8(qtype >> 8), UInt8(qtype & 0xFF), 0, 1]
        var options: [UInt8] = []
        if let (address, len) = ecs {
            let n = (len + 7) / 8
            var bytes = Array(address[0..<n])
            if len % 8 != 0, n > 0 { bytes[n - 1] &= UInt8(0xFF) << (8 - len % 8) }
            let data: [UInt8] = [0, address.count == 4 ? 1 : 2, UInt8(len), 0] + bytes
            options = [0, 8, UInt8(data.count >> 8), UInt8(data.count & 0xFF)] + data
        }
        p += [0, 0, 41, 0x10, 0x00, 0, 0, 0, 0, UInt8(options.count >> 8), UInt8(options.count & 0xFF)] + options
        return p
    }

    /// The ECS scope prefix in a response's OPT record.
    static func scopeOf(_ r: [UInt8]) -> UInt8? {
        r.withUnsafeBytes { p -> UInt8? in
            guard p.count >= 12 else { return nil }
            let counts = (0..<4).map { Int(p[4 + 2 * $0]) << 8 | Int(p[5 + 2 * $0]) }
            guard var o = QueryParser.skipName(p, at: 12) else { return nil }
            o += 4
            for section in 1...3 {
                for _ in 0..<counts[section] {
                    guard let end = QueryParser.skipName(p, at: o), end + 10 <= p.count else { return nil }
                    let type = Int(p[end]) << 8 | Int(p[end + 1])
                    let rdlength = Int(p[end + 8]) << 8 | Int(p[end + 9])
                    var k = end + 10
                    let stop = k + rdlength
                    if type == 41 {
                        while k + 4 <= stop && stop <= p.count {
                            let code = Int(p[k]) << 8 | Int(p[k + 1])
                            let len = Int(p[k + 2]) << 8 | Int(p[k + 3])
                            if code == 8 && len >= 4 { return p[k + 7] }
                            k += 4 + len
                        }
                    }
                    o = stop
                }
            }
            return nil
        }
    }
}
