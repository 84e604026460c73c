public import DNSWire
import Zones

/// AXFR (RFC 5936) and IXFR without history (RFC 1995 §4) as a sequence of TCP messages.
public enum ZoneTransfer {
    /// Target size of one message: well under 64 KiB, so any RRset of a sane zone fits.
    static let messageSize = 16 * 1024

    /// What a transfer request gets.
    public enum Outcome {
        /// The messages, built one at a time as the connection takes them.
        case stream(TransferStream)
        /// Not a transfer this server makes: answer with this rcode.
        case refuse(UInt16)
    }

    /// Starts an AXFR/IXFR `query` from `client`: checks who asks and for what; the messages are
    /// built by the stream, each in time linear in what it holds.
    public static func respond(
        to packet: UnsafeRawBufferPointer, query q: Query, snapshot: Snapshot, client: ClientAddress
    )
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
        var stream = TransferStream(packet: Array(packet), query: q, zone: zone)
        if q.qtype == RRType.ixfr, let clientSerial = ixfrSerial(packet, after: q.questionEnd),
            !serialIsNewer(zone.serial, than: clientSerial)
        {
            // RFC 1995 §2: the client is current; one SOA says so.
            stream.soaOnly = true
        }
        return .stream(stream)
    }
}

/// The messages of one transfer, in order: the SOA, every other RRset node by node, the SOA again
/// (RFC 5936 §2.2). A cursor over the zone: no list of its records is made, and each message
/// costs time in proportion to what it holds.
public struct TransferStream: Sendable {
    let packet: [UInt8]
    let query: Query
    let zone: Zone
    /// IXFR from a client already current: the SOA alone.
    var soaOnly = false
    /// 0: the leading SOA is next; 1: the RRsets of `node` from `rrset`; 2: the trailing SOA; 3: done.
    var phase = 0
    var node = 0
    var rrset = -1
    var sent = 0

    init(packet: [UInt8], query: Query, zone: Zone) {
        self.packet = packet
        self.query = query
        self.zone = zone
    }

    /// The record set the cursor is at, or nil at the end.
    mutating func current() -> (node: Int, rrset: Int)? {
        while true {
            switch phase {
            case 0: return (zone.apex, zone.soa)
            case 1:
                guard node < zone.nodes.count else {
                    phase = 2
                    continue
                }
                let n = zone.nodes[node]
                if rrset < 0 { rrset = Int(n.rrsetStart) }
                if rrset >= Int(n.rrsetStart + n.rrsetCount) {
                    node += 1
                    rrset = -1
                    continue
                }
                if rrset == zone.soa {
                    rrset += 1
                    continue
                }
                return (node, rrset)
            case 2: return (zone.apex, zone.soa)
            default: return nil
            }
        }
    }

    mutating func advance() {
        switch phase {
        case 0: phase = soaOnly ? 3 : 1
        case 1: rrset += 1
        default: phase = 3
        }
    }

    /// The next message, or nil when the transfer is complete.
    public mutating func next() -> [UInt8]? {
        guard current() != nil else { return nil }
        let first = sent == 0
        var out = [UInt8](repeating: 0, count: WireLimits.maxMessageSize)
        let length = out.withUnsafeMutableBytes { buf -> Int in
            packet.withUnsafeBytes { packet in
                var w = MessageWriter(base: buf.baseAddress!, limit: ZoneTransfer.messageSize)
                let q = query
                _ = w.writeHeader(id: q.id, flags: HeaderFlags.qr | HeaderFlags.aa | (q.flags & HeaderFlags.rd))
                if first {
                    _ = w.append(UnsafeRawBufferPointer(rebasing: packet[12..<q.questionEnd]))
                    w.incrementCount(section: .question)
                    w.registerName(at: 12)
                }
                var taken = 0
                while let (node, rrset) = current() {
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
                        if !fits {
                            // Larger than any message: skipped rather than looping on it.
                            w.rewind(to: start)
                            advance()
                            continue
                        }
                    }
                    guard fits else {
                        w.rewind(to: start)
                        break
                    }
                    w.incrementCount(section: .answer, by: Int(set.count))
                    taken += 1
                    advance()
                }
                if q.hasEDNS && first {
                    var options = EngineOptions()
                    _ = withUnsafePointer(to: &options) { OPTWriter(query: q, options: $0, rcode: 0).write(&w) }
                }
                return w.position
            }
        }
        sent += 1
        return Array(out[0..<length])
    }
}

extension ZoneTransfer {
    /// The serial of the SOA a client put in the authority section of its IXFR (RFC 1995 §3).
    static func ixfrSerial(_ p: UnsafeRawBufferPointer, after offset: Int) -> UInt32? {
        guard p.count >= 12, (UInt16(p[8]) << 8 | UInt16(p[9])) >= 1 else { return nil }
        var i = offset
        // Skip answers (an IXFR query has none) and read the first authority record.
        guard let afterOwner = QueryParser.skipName(p, at: i), afterOwner + 10 <= p.count else { return nil }
        let type = UInt16(p[afterOwner]) << 8 | UInt16(p[afterOwner + 1])
        guard type == RRType.soa else { return nil }
        i = afterOwner + 10
        guard let m = QueryParser.skipName(p, at: i), let r = QueryParser.skipName(p, at: m), r + 4 <= p.count else {
            return nil
        }
        return UInt32(p[r]) << 24 | UInt32(p[r + 1]) << 16 | UInt32(p[r + 2]) << 8 | UInt32(p[r + 3])
    }

    /// RFC 1982 serial number arithmetic: whether `a` is newer than `b`.
    static func serialIsNewer(_ a: UInt32, than b: UInt32) -> Bool {
        a != b && (a &- b) < 0x8000_0000
    }
}
