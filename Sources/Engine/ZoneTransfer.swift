import DNSWire
import Zones

/// AXFR (RFC 5936) and IXFR without history (RFC 1995 §4) as a sequence of TCP messages.
public enum ZoneTransfer {
    /// Target size of one message: well under 64 KiB, so any RRset of a sane zone fits.
    static let messageSize = 16 * 1024

    /// What a transfer request gets.
    public enum Outcome {
        /// Messages to send in order.
        case messages([[UInt8]])
        /// Not a transfer this server makes: answer with this rcode.
        case refuse(UInt16)
    }

    /// Builds the response messages for an AXFR/IXFR `query` from `client` (4 or 16 address octets).
    public static func respond(to packet: UnsafeRawBufferPointer, query q: Query, snapshot: Snapshot, client: ClientAddress)
        -> Outcome
    {
        guard q.qclass == RRClass.in else { return .refuse(Rcode.refused) }
        guard snapshot.options.transferAllow.allows(client) else {
            return .refuse(Rcode.refused)
        }
        let qname = UnsafeRawBufferPointer(rebasing: packet[12..<(12 + q.qnameLength)])
        let labels = LabelOffsets(qname)
        guard let zone = snapshot.zones.zone(for: qname, labels: labels), labels.count == zone.originLabels else {
            return .refuse(Rcode.notAuth)
        }
        if q.qtype == RRType.ixfr, let clientSerial = ixfrSerial(packet, after: q.questionEnd),
            !serialIsNewer(zone.serial, than: clientSerial)
        {
            // RFC 1995 §2: the client is current; one SOA says so.
            return .messages([build(packet, q, zone, records: [(zone.apex, zone.soa)])])
        }
        var records: [(Int, Int)] = [(zone.apex, zone.soa)]
        for node in 0..<zone.nodes.count {
            let n = zone.nodes[node]
            for r in Int(n.rrsetStart)..<Int(n.rrsetStart + n.rrsetCount) where r != zone.soa {
                records.append((node, r))
            }
        }
        records.append((zone.apex, zone.soa))
        var messages: [[UInt8]] = []
        var i = 0
        while i < records.count {
            var taken = 0
            let message = build(packet, q, zone, records: Array(records[i...]), taken: &taken, first: messages.isEmpty)
            messages.append(message)
            i += max(taken, 1)
        }
        return .messages(messages)
    }

    static func build(_ packet: UnsafeRawBufferPointer, _ q: Query, _ zone: Zone, records: [(Int, Int)]) -> [UInt8] {
        var taken = 0
        return build(packet, q, zone, records: records, taken: &taken, first: true)
    }

    /// One message holding as many whole RRsets of `records` as fit in `messageSize`.
    static func build(_ packet: UnsafeRawBufferPointer, _ q: Query, _ zone: Zone, records: [(Int, Int)],
                      taken: inout Int, first: Bool) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: WireLimits.maxMessageSize)
        let length = out.withUnsafeMutableBytes { buf -> Int in
            var w = MessageWriter(base: buf.baseAddress!, limit: messageSize)
            _ = w.writeHeader(id: q.id, flags: HeaderFlags.qr | HeaderFlags.aa | (q.flags & HeaderFlags.rd))
            if first {
                _ = w.append(UnsafeRawBufferPointer(rebasing: packet[12..<q.questionEnd]))
                w.incrementCount(section: 0)
                w.registerName(at: 12)
            }
            for (node, rrset) in records {
                let set = zone.rrsets[rrset]
                let owner = zone.name(of: node)
                let start = w.position
                func writeSet(_ w: inout MessageWriter) -> Bool {
                    owner.withUnsafeBytes { name in
                        zone.forEachRecord(rrset) { rd in
                            w.writeRR(owner: name, type: set.type, rrClass: RRClass.in, ttl: set.ttl, rdata: rd)
                        }
                    }
                }
                var fits = writeSet(&w)
                if !fits && taken == 0 {
                    // A single RRset larger than a message: give it the whole 64 KiB.
                    w.rewind(to: start)
                    w.limit = WireLimits.maxMessageSize
                    fits = writeSet(&w)
                }
                guard fits else { w.rewind(to: start); break }
                w.incrementCount(section: 1, by: Int(set.count))
                taken += 1
            }
            if q.hasEDNS && first {
                var options = EngineOptions()
                _ = withUnsafePointer(to: &options) { OPTWriter(query: q, options: $0, rcode: 0).write(&w) }
            }
            return w.position
        }
        return Array(out[0..<length])
    }

    /// The serial of the SOA a client put in the authority section of its IXFR (RFC 1995 §3).
    static func ixfrSerial(_ p: UnsafeRawBufferPointer, after offset: Int) -> UInt32? {
        guard p.count >= 12, (UInt16(p[8]) << 8 | UInt16(p[9])) >= 1 else { return nil }
        var i = offset
        // Skip answers (an IXFR query has none) and read the first authority record.
        guard let afterOwner = QueryParser.skipName(p, at: i), afterOwner + 10 <= p.count else { return nil }
        let type = UInt16(p[afterOwner]) << 8 | UInt16(p[afterOwner + 1])
        guard type == RRType.soa else { return nil }
        i = afterOwner + 10
        guard let m = QueryParser.skipName(p, at: i), let r = QueryParser.skipName(p, at: m), r + 4 <= p.count else { return nil }
        return UInt32(p[r]) << 24 | UInt32(p[r + 1]) << 16 | UInt32(p[r + 2]) << 8 | UInt32(p[r + 3])
    }

    /// RFC 1982 serial number arithmetic: whether `a` is newer than `b`.
    static func serialIsNewer(_ a: UInt32, than b: UInt32) -> Bool {
        a != b && (a &- b) < 0x8000_0000
    }
}
