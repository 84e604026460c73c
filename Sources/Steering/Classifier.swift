import Foundation
public import Geo

/// What one name's location-dependent steps (geo, latency) make of a client: the pools in the
/// order to try, and the expected RTT to each. Computed at load for every distinct location.
public struct LocationClass: Sendable, Equatable, Hashable {
    /// Pool indices (global), best first.
    public var order: [Int]
    /// Expected RTT in ms per pool of `order` (same positions); empty without a latency step.
    public var rtt: [Double]
}

/// The facts known about a client location, as the classifier reads them.
public struct LocationFacts: Sendable {
    public var record: GeoRecord?
    public var asn: UInt32?
    /// Index into the name's geo `nets` (longest match), and into the latency `nets`.
    public var geoNet: Int?
    public var latencyNet: Int?

    public init(record: GeoRecord? = nil, asn: UInt32? = nil, geoNet: Int? = nil, latencyNet: Int? = nil) {
        self.record = record
        self.asn = asn
        self.geoNet = geoNet
        self.latencyNet = latencyNet
    }
}

/// Turns location facts into a `LocationClass` for one name; also explains the choice.
public struct Classifier: Sendable {
    let model: SteeringModel
    let name: SteeredName
    /// The region of each of the name's pools (same positions as `name.pools`), and the regions:
    /// read per location without going through the model (the compile classifies every location
    /// of the database).
    private let poolRegion: [Int]
    private let regions: [Region]

    public init(model: SteeringModel, name: SteeredName) {
        self.model = model
        self.name = name
        poolRegion = name.pools.map { model.pools[$0].region }
        regions = model.regions
    }

    /// The class, and what decided it for `explain` (only when `explain`: the compile classifies
    /// every location of a database and needs no sentences).
    public func classify(_ f: LocationFacts, explain: Bool = true) -> (LocationClass, [String]) {
        var why = Why(on: explain)
        var order = name.pools
        if let geo = name.geo, name.has(.geo) {
            var listed: [Int]? = nil
            if let n = f.geoNet {
                listed = geo.nets[n].1
                why.append("geo: CIDR map entry \(geo.nets[n].0)")
            } else if let asn = f.asn ?? f.record?.asn, let l = geo.asn[asn] {
                listed = l
                why.append("geo: ASN \(asn)")
            } else if !geo.subdivision.isEmpty, let c = f.record?.country, let s = f.record?.subdivision,
                let l = geo.subdivision["\(c)-\(s)"]
            {
                listed = l
                why.append("geo: subdivision \(c)-\(s)")
            } else if let c = f.record?.country, let l = geo.country[c] {
                listed = l
                why.append("geo: country \(c)")
            } else if let c = f.record?.continent, let l = geo.continent[c] {
                listed = l
                why.append("geo: continent \(c)")
            } else if let l = geo.defaultRegions {
                listed = l
                why.append("geo: no rule matched; default regions")
            }
            order = orderPools(listed: listed ?? [], record: f.record, why: &why)
            // With `failover: spread` only the first pool's place matters (the rest share by capacity):
            // keep the rest in configured order so that neighbours with the same first pool merge
            // into one network (a larger ECS scope). A latency step still needs the full order.
            if name.has(.failover) && name.spread && !name.has(.latency), order.count > 2 {
                order = [order[0]] + name.pools.filter { $0 != order[0] && order.contains($0) }
            }
        }
        var rtt: [Double] = []
        if let lat = name.latency, name.has(.latency) {
            var row = lat.defaultRTT
            if let n = f.latencyNet {
                row = lat.nets[n].1
                why.append("latency: CIDR map entry \(lat.nets[n].0)")
            } else if let c = f.record?.country, let r = lat.country[c] {
                row = r
                why.append("latency: country \(c)")
            } else if let c = f.record?.continent, let r = lat.continent[c] {
                row = r
                why.append("latency: continent \(c)")
            } else {
                why.append("latency: default RTTs")
            }
            rtt = order.map { p in
                let region = model.pools[p].region
                if let ms = row[region] { return ms }
                // Unknown: estimate from distance (light in fibre, ~100 km per ms round trip), else last.
                if let d = distanceKm(f.record, model.regions[region]) { return 5 + d / 100 }
                return .infinity
            }
        }
        return (LocationClass(order: order, rtt: rtt), why.lines)
    }

    /// Pools whose region is listed come first, in list order; the others follow by (biased)
    /// distance from the client when its coordinates are known, else in configured order.
    func orderPools(listed: [Int], record: GeoRecord?, why: inout Why) -> [Int] {
        let pools = name.pools
        // Where each pool's region stands in `listed` (its first place), or Int.max.
        var rank = [Int](repeating: .max, count: pools.count)
        for i in pools.indices { rank[i] = listed.firstIndex(of: poolRegion[i]) ?? .max }
        var first: [Int] = []
        var rest: [Int] = []
        for i in pools.indices { if rank[i] != .max { first.append(i) } else { rest.append(i) } }
        // Stable insertion sorts: a name has at most 16 pools.
        insertionSort(&first) { rank[$0] < rank[$1] }
        if let lat = record?.latitude, let lon = record?.longitude {
            var key = [Double](repeating: 0, count: pools.count)
            for i in rest {
                let region = regions[poolRegion[i]]
                let d = region.latitude.flatMap { la in
                    region.longitude.map { lo in greatCircleKm(lat, lon, la, lo) }
                }
                key[i] = biased(d ?? .infinity, bias: region.bias)
            }
            insertionSort(&rest) { key[$0] < key[$1] }
            if listed.isEmpty {
                let coords = String(format: "%.2f, %.2f", lat, lon)
                why.append("geo: no rule matched; nearest regions from \(coords)")
            }
        }
        return (first + rest).map { pools[$0] }
    }

    /// Sorts positions by `less`, keeping equal ones in order.
    private func insertionSort(_ a: inout [Int], _ less: (Int, Int) -> Bool) {
        guard a.count > 1 else { return }
        for i in 1..<a.count {
            let x = a[i]
            var j = i
            while j > 0 && less(x, a[j - 1]) {
                a[j] = a[j - 1]
                j -= 1
            }
            a[j] = x
        }
    }

    /// Route 53's geoproximity bias: d × (1 − b/100) for b > 0, d / (1 + b/100) for b < 0.
    func biased(_ d: Double, bias: Double) -> Double {
        if bias > 0 { return d * (1 - bias / 100) }
        if bias < 0 { return d / (1 + bias / 100) }
        return d
    }

    func distanceKm(_ record: GeoRecord?, _ region: Region) -> Double? {
        guard let lat1 = record?.latitude, let lon1 = record?.longitude, let lat2 = region.latitude,
            let lon2 = region.longitude
        else { return nil }
        return greatCircleKm(lat1, lon1, lat2, lon2)
    }
}

/// Haversine distance on a sphere of the Earth's mean radius.
public func greatCircleKm(_ lat1: Double, _ lon1: Double, _ lat2: Double, _ lon2: Double) -> Double {
    let r = 6371.0088
    let p1 = lat1 * .pi / 180
    let p2 = lat2 * .pi / 180
    let dp = p2 - p1
    let dl = (lon2 - lon1) * .pi / 180
    let a = sin(dp / 2) * sin(dp / 2) + cos(p1) * cos(p2) * sin(dl / 2) * sin(dl / 2)
    return 2 * r * asin(min(1, sqrt(a)))
}

/// The reasons `classify` gives, kept only when asked for (built lazily: no string is made otherwise).
struct Why {
    let on: Bool
    var lines: [String] = []

    mutating func append(_ line: @autoclosure () -> String) {
        if on { lines.append(line()) }
    }
}
