public import DNSWire

/// The zones served together, found by longest suffix of the query name.
public final class ZoneSet: Sendable {
    public let zones: [Zone]
    /// Zone indices by the hash of their lower-case origin; collisions resolved by comparing names.
    @usableFromInline let byHash: [Int: [Int]]
    @usableFromInline let minLabels: Int
    @usableFromInline let sortedZones: [Zone]

    public init(_ zones: [Zone]) {
        self.zones = zones
        var map: [Int: [Int]] = [:]
        for (i, z) in zones.enumerated() {
            z.origin.withUnsafeBytes { map[Zone.hash($0), default: []].append(i) }
        }
        byHash = map
        sortedZones = zones.sorted { $0.origin.count > $1.origin.count }
        minLabels = zones.map(\.originLabels).min() ?? 0
    }

    /// The zone with the longest origin that `name` falls in, or nil. A few zones are scanned,
    /// without the label offsets (the query path computes those once, in `Resolution`).
    @inlinable @inline(__always)
    public func zone(for name: UnsafeRawBufferPointer) -> Zone? {
        if zones.count <= ZoneSet.linearLimit { return linearZone(for: name) }
        return zone(for: name, labels: LabelOffsets(name))
    }

    /// The same, given the label offsets of `name`.
    @inlinable @inline(__always)
    public func zone(for name: UnsafeRawBufferPointer, labels: borrowing LabelOffsets) -> Zone? {
        guard !zones.isEmpty else { return nil }
        if zones.count <= ZoneSet.linearLimit { return linearZone(for: name) }
        var k = labels.count
        while k >= minLabels {
            let suffix = labels.suffix(name, labels: k)
            if let candidates = byHash[Zone.hash(suffix)] {
                for c in candidates {
                    let z = zones[c]
                    let match = z.origin.withUnsafeBytes { DNSWire.Name.equal($0, suffix) }
                    if match { return z }
                }
            }
            k -= 1
        }
        return nil
    }

    /// Up to this many zones a scan (longest origin first) beats hashing every suffix.
    @usableFromInline static let linearLimit = 16

    @inlinable @inline(__always)
    func linearZone(for name: UnsafeRawBufferPointer) -> Zone? {
        for z in sortedZones {
            let match = z.origin.withUnsafeBytes { DNSWire.Name.isSubdomain(name, of: $0) }
            if match { return z }
        }
        return nil
    }

    /// The zone strictly above `zone` (for DS at a child apex, RFC 4035 §3.1.4.1), or nil.
    public func parent(of zone: Zone) -> Zone? {
        var best: Zone? = nil
        for z in zones
        where z !== zone && z.originLabels < zone.originLabels
            && DNSWire.Name.isSubdomain(zone.origin[...], of: z.origin[...])
        {
            if best == nil || z.originLabels > best!.originLabels { best = z }
        }
        return best
    }
}
