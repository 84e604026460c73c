/// Resource record types Lodestar treats specially (RFC 1035 §3.2.2, RFC 3596, RFC 6672, RFC 6891, RFC 8482).
///
/// Every other type is carried opaquely: the zone loader stores its RDATA and the answer copies it.
public enum RRType {
    public static let a: UInt16 = 1
    public static let ns: UInt16 = 2
    public static let md: UInt16 = 3
    public static let mf: UInt16 = 4
    public static let cname: UInt16 = 5
    public static let soa: UInt16 = 6
    public static let mb: UInt16 = 7
    public static let mg: UInt16 = 8
    public static let mr: UInt16 = 9
    public static let null: UInt16 = 10
    public static let ptr: UInt16 = 12
    public static let minfo: UInt16 = 14
    public static let mx: UInt16 = 15
    public static let txt: UInt16 = 16
    public static let aaaa: UInt16 = 28
    public static let srv: UInt16 = 33
    public static let dname: UInt16 = 39
    public static let opt: UInt16 = 41
    public static let ds: UInt16 = 43
    public static let rrsig: UInt16 = 46
    public static let nsec: UInt16 = 47
    public static let tkey: UInt16 = 249
    public static let tsig: UInt16 = 250
    public static let ixfr: UInt16 = 251
    public static let axfr: UInt16 = 252
    public static let mailb: UInt16 = 253
    public static let maila: UInt16 = 254
    public static let any: UInt16 = 255

    static let mnemonics: [UInt16: String] = [
        1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 13: "HINFO", 15: "MX", 16: "TXT", 17: "RP", 18: "AFSDB",
        24: "SIG", 25: "KEY", 28: "AAAA", 29: "LOC", 33: "SRV", 35: "NAPTR", 36: "KX", 37: "CERT", 39: "DNAME",
        41: "OPT", 42: "APL", 43: "DS", 44: "SSHFP", 45: "IPSECKEY", 46: "RRSIG", 47: "NSEC", 48: "DNSKEY",
        49: "DHCID", 50: "NSEC3", 51: "NSEC3PARAM", 52: "TLSA", 53: "SMIMEA", 59: "CDS", 60: "CDNSKEY",
        61: "OPENPGPKEY", 62: "CSYNC", 63: "ZONEMD", 64: "SVCB", 65: "HTTPS", 99: "SPF", 108: "EUI48", 109: "EUI64",
        249: "TKEY", 250: "TSIG", 251: "IXFR", 252: "AXFR", 255: "ANY", 256: "URI", 257: "CAA"
    ]

    /// The type for a mnemonic (`MX`) or RFC 3597 form (`TYPE65280`).
    public static func code(_ text: String) -> UInt16? {
        let t = text.uppercased()
        if let (k, _) = mnemonics.first(where: { $0.value == t }) { return k }
        if t.hasPrefix("TYPE") { return UInt16(t.dropFirst(4)) }
        return nil
    }

    /// The mnemonic of a type (`MX`), or `TYPE65280` in RFC 3597 form.
    public static func name(_ type: UInt16) -> String { mnemonics[type] ?? "TYPE\(type)" }

    /// Types whose RDATA names may be compressed (RFC 3597 §4: only the RFC 1035 types).
    @inline(__always)
    public static func hasCompressibleRDATA(_ type: UInt16) -> Bool {
        switch type {
        case ns, md, mf, cname, soa, mb, mg, mr, ptr, minfo, mx: return true
        default: return false
        }
    }

    /// Meta-types that may not appear in a zone (RFC 6895 §3.1): 128–255 except ANY handled by the engine.
    @inline(__always)
    public static func isMetaType(_ type: UInt16) -> Bool {
        type == opt || (type >= 128 && type <= 255)
    }
}

/// DNS classes (RFC 1035 §3.2.4, RFC 2136).
public enum RRClass {
    public static let `in`: UInt16 = 1
    public static let ch: UInt16 = 3
    public static let hs: UInt16 = 4
    public static let none: UInt16 = 254
    public static let any: UInt16 = 255
}

/// Response codes, including the extended ones carried in OPT (RFC 6891 §6.1.3).
public enum Rcode {
    public static let noError: UInt16 = 0
    public static let formErr: UInt16 = 1
    public static let servFail: UInt16 = 2
    public static let nxDomain: UInt16 = 3
    public static let notImp: UInt16 = 4
    public static let refused: UInt16 = 5
    public static let yxDomain: UInt16 = 6
    public static let notAuth: UInt16 = 9
    public static let badVers: UInt16 = 16
    /// RFC 7873 §8: a server cookie missing or not valid, sent back with a fresh one.
    public static let badCookie: UInt16 = 23

    /// Mnemonics of the 4-bit header codes (RFC 1035, RFC 2136), by value.
    public static let names = [
        "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
        "NXRRSET", "NOTAUTH", "NOTZONE", "RCODE11", "RCODE12", "RCODE13", "RCODE14", "RCODE15"
    ]

    /// `SERVFAIL` for 2; the number for anything past the header's 4 bits.
    public static func name(_ r: Int) -> String { names.indices.contains(r) ? names[r] : "\(r)" }

    /// The code of a mnemonic (case-insensitive).
    public static func code(_ text: String) -> UInt8? { names.firstIndex(of: text.uppercased()).map(UInt8.init) }
}

/// EDNS option codes used by the server.
public enum EDNSOption {
    public static let nsid: UInt16 = 3  // RFC 5001
    public static let clientSubnet: UInt16 = 8  // RFC 7871
    public static let cookie: UInt16 = 10  // RFC 7873
}

/// Limits of the wire format.
public enum WireLimits {
    /// RFC 1035 §2.3.4: names are at most 255 octets in wire form.
    public static let maxNameLength = 255
    /// RFC 1035 §2.3.4: labels are at most 63 octets.
    public static let maxLabelLength = 63
    /// RFC 1035 §4.2.1: UDP messages without EDNS are at most 512 octets.
    public static let classicUDPSize = 512
    /// DNS Flag Day 2020: the EDNS buffer size we advertise and never exceed over UDP.
    public static let advertisedUDPSize = 1232
    /// RFC 1035 §4.2.2: a TCP message is framed by a 16-bit length.
    public static let maxMessageSize = 65535
}
