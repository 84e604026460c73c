import CLDNS
import Foundation

/// A DNS message rendered as presentation text through libldns, for tests and diagnostics.
public struct MessageText: Sendable {
    public var rcode: String
    public var flags: Set<String>
    public var question: [String]
    public var answer: [String]
    public var authority: [String]
    /// Additional records other than OPT.
    public var additional: [String]
    /// The OPT record as ldns prints its pseudo-section, nil when absent.
    public var hasOPT: Bool

    /// Parses `wire`; nil when libldns cannot.
    public init?(_ wire: [UInt8]) {
        var pkt: UnsafeMutablePointer<ldns_pkt>? = nil
        let status = wire.withUnsafeBufferPointer { ldns_wire2pkt(&pkt, $0.baseAddress, $0.count) }
        guard status == LDNS_STATUS_OK, let pkt else { return nil }
        defer { ldns_pkt_free(pkt) }
        let rc = ldns_pkt_get_rcode(pkt)
        let ext = UInt16(ldns_pkt_edns_extended_rcode(pkt))
        let code = UInt16(rc.rawValue) | (ext << 4)
        rcode = MessageText.rcodeNames[code] ?? "RCODE\(code)"
        var f: Set<String> = []
        if ldns_pkt_qr(pkt) != 0 { f.insert("qr") }
        if ldns_pkt_aa(pkt) != 0 { f.insert("aa") }
        if ldns_pkt_tc(pkt) != 0 { f.insert("tc") }
        if ldns_pkt_rd(pkt) != 0 { f.insert("rd") }
        if ldns_pkt_ra(pkt) != 0 { f.insert("ra") }
        if ldns_pkt_cd(pkt) != 0 { f.insert("cd") }
        flags = f
        question = MessageText.lines(ldns_pkt_question(pkt))
        answer = MessageText.lines(ldns_pkt_answer(pkt))
        authority = MessageText.lines(ldns_pkt_authority(pkt))
        additional = MessageText.lines(ldns_pkt_additional(pkt))
        hasOPT = ldns_pkt_edns(pkt) != 0
    }

    static let rcodeNames: [UInt16: String] = [
        0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP",
        5: "REFUSED", 6: "YXDOMAIN", 9: "NOTAUTH", 16: "BADVERS"
    ]

    /// Each RR as one line with single spaces: `www.example.com. 3600 IN A 192.0.2.1`.
    static func lines(_ list: UnsafeMutablePointer<ldns_rr_list>?) -> [String] {
        guard let list else { return [] }
        var out: [String] = []
        for i in 0..<ldns_rr_list_rr_count(list) {
            guard let rr = ldns_rr_list_rr(list, i), let s = ldns_rr2str(rr) else { continue }
            let text = String(cString: s)
            free(s)
            out.append(text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).joined(separator: " "))
        }
        return out
    }
}
