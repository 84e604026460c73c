import Cluster
import Foundation
import Geo
import HTTPClient
import Zones

/// Harnesses for what peers send and what files hold beyond the zone and config text: etcd's
/// HTTP and JSON replies, MaxMind databases, and a zone's `$INCLUDE` graph.
extension Harnesses {
    /// Octets handed out as a peer would send them: in pieces, then the end of the stream.
    final class FeedTransport: ByteTransport {
        var rest: ArraySlice<UInt8>
        init(_ bytes: [UInt8]) { rest = bytes[...] }
        func send(_ bytes: [UInt8], deadline: Date) throws {}
        func receive(deadline: Date) throws -> [UInt8] {
            // Pieces of 1 to 64 octets, their size from the input itself: headers and chunks split anywhere.
            let n = min(rest.count, 1 + Int(rest.first ?? 0) % 64)
            defer { rest = rest.dropFirst(n) }
            return Array(rest.prefix(n))
        }
        func abort() {}
    }

    /// etcd's replies: an HTTP response (Content-Length, chunked or to the end) whose body is a
    /// range reply, then watch lines. Read or refused with an error naming the peer; never a trap.
    static func etcd(_ data: UnsafeRawBufferPointer) {
        let bytes = Array(data)
        let c = HTTPConnection(transport: FeedTransport(bytes), endpoint: "fuzz-etcd")
        let deadline = Date().addingTimeInterval(5)
        if let r = try? c.readResponse(deadline: deadline, limit: 1 << 20) {
            precondition(r.body.count <= 1 << 20, "a body over the limit")
            if let o = (try? JSONSerialization.jsonObject(with: Data(r.body))) as? [String: Any] {
                for kv in o["kvs"] as? [[String: Any]] ?? [] {
                    let v = EtcdClient.keyValue(kv)
                    precondition(v.modRevision >= 0 && v.lease >= 0, "a negative revision or lease")
                }
            }
        }
        // The same octets as the lines of a watch stream.
        for line in bytes.split(separator: 0x0A, omittingEmptySubsequences: true).prefix(64) {
            if let (events, rev) = try? EtcdClient.watchMessage(Array(line), endpoint: "fuzz-etcd") {
                precondition(rev >= 0 && rev <= 1 << 60, "a revision out of range: \(rev)")
                for e in events {
                    if case .put(let kv) = e {
                        precondition(kv.modRevision &+ 1 > kv.modRevision, "a revision that overflows")
                    }
                }
            }
        }
    }

    /// A MaxMind database (mutated .mmdb files): refused with a `GeoError` naming the file, or
    /// loaded whole; then its records decode, and every walk of its tree ends in a node, a record
    /// it decoded, or nothing, within the address's bits.
    static func mmdb(_ data: UnsafeRawBufferPointer) {
        let path = file(data, "fuzz.mmdb")
        guard let db = try? GeoDatabase(path: path) else { return }
        let locations = db.locations()
        precondition(locations.ofRecord.count == db.recordCount, "a record not decoded")
        for address: [UInt8] in [
            [198, 51, 100, 7], [192, 0, 2, 1], [0, 0, 0, 0], [255, 255, 255, 255],
            [0x20, 0x01, 0x0d, 0xb8] + [UInt8](repeating: 0, count: 12)
        ] {
            var code: UInt32 = address.count == 4 && db.ipVersion == 6 ? db.tree.ipv4Start : 0
            var depth = 0
            while code < db.nodeCount, depth < address.count * 8 {
                let bit = address[depth / 8] >> (7 - UInt8(depth % 8)) & 1
                code = bit == 0 ? db.tree.branches(code).0 : db.tree.branches(code).1
                depth += 1
            }
            if code != GeoTree.empty && code >= db.nodeCount {
                let rank = Int(code & ~GeoTree.recordBit)
                precondition(code & GeoTree.recordBit != 0 && rank < db.recordCount, "a record past the records")
                precondition(Int(locations.ofRecord[rank]) < locations.records.count, "a location past the locations")
            }
            _ = db.lookup(address)
        }
    }

    /// A zone and the files it includes: the input is up to four files (`z.zone`, `a.inc`,
    /// `b.inc`, `c.inc`) separated by lines of `=====`, which may include each other and
    /// themselves. Loaded or refused, always within the limits (includes, octets, lines).
    static func include(_ data: UnsafeRawBufferPointer) {
        let text = String(decoding: data, as: UTF8.self)
        let names = ["z.zone", "a.inc", "b.inc", "c.inc"]
        let parts = text.components(separatedBy: "\n=====\n")
        try? FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        for (i, name) in names.enumerated() {
            try? (i < parts.count ? parts[i] : "").write(
                toFile: scratch + "/" + name, atomically: false, encoding: .utf8)
        }
        var limits = ZoneLimits()
        limits.includes = 64
        limits.fileSize = 64 << 10
        limits.zoneSize = 1 << 20
        limits.lineLength = 16 << 10
        limits.records = 10_000
        let started = Date()
        let loaded = ZoneDirectory.loadFile(scratch + "/z.zone", origin: "fuzz.test.", limits: limits)
        precondition(Date().timeIntervalSince(started) < 5, "a load of four small files took over 5 s")
        precondition((loaded.zone?.recordCount ?? 0) <= limits.records, "more records than the limit")
        for p in loaded.problems { precondition(!p.file.isEmpty && !p.message.isEmpty, "a problem without its file") }
    }
}
