public import DNSWire

/// The PROXY protocol version 2 header (haproxy's proxy-protocol.txt §2.2) that dnsdist, an L4
/// load balancer or a UDP relay puts before a query (UDP: every datagram; TCP: the start of the
/// connection) to tell the original client's address.
///
/// Only `proxy-protocol.allow` peers are trusted: from them a datagram or connection without a
/// valid header is dropped; from anyone else one with a header is dropped (it would otherwise be
/// a way to choose one's own apparent source address).
public enum ProxyHeader {
    /// The 12-octet signature.
    public static let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
    /// Signature, version/command, family/protocol, length.
    public static let fixedLength = 16
    /// A header and its TLVs may not be longer than this (a DNS query follows in the same datagram).
    public static let maxLength = 16 + 512

    public enum Parsed: Equatable {
        /// Not enough octets yet to tell (TCP: read more).
        case incomplete
        /// Not a PROXY v2 header, or a malformed one.
        case invalid
        /// A header of `length` octets. `client` is the original source (nil for the LOCAL
        /// command, or an address family that is not IP: the peer itself is the client).
        case header(length: Int, client: ClientAddress?)
    }

    /// Whether `bytes` starts with the signature (as much of it as there is).
    @inlinable
    public static func startsWithSignature(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let n = min(bytes.count, signature.count)
        guard n > 0 else { return false }
        for i in 0..<n where bytes[i] != signature[i] { return false }
        return true
    }

    /// `count` octets at `at` as a big-endian integer.
    static func word(_ b: UnsafeRawBufferPointer, _ at: Int, _ count: Int) -> UInt64 {
        var v: UInt64 = 0
        for i in at..<at + count { v = v << 8 | UInt64(b[i]) }
        return v
    }

    public static func parse(_ bytes: UnsafeRawBufferPointer) -> Parsed {
        guard bytes.count >= fixedLength else { return startsWithSignature(bytes) ? .incomplete : .invalid }
        for i in 0..<signature.count where bytes[i] != signature[i] { return .invalid }
        let versionCommand = bytes[12]
        guard versionCommand >> 4 == 2 else { return .invalid }
        let command = versionCommand & 0x0F
        guard command <= 1 else { return .invalid }
        let family = bytes[13] >> 4
        let transport = bytes[13] & 0x0F
        let length = Int(bytes[14]) << 8 | Int(bytes[15])
        guard fixedLength + length <= maxLength else { return .invalid }
        guard bytes.count >= fixedLength + length else { return .incomplete }
        let total = fixedLength + length
        if command == 0 { return .header(length: total, client: nil) }  // LOCAL: the peer's own traffic (health checks)
        guard transport <= 2 else { return .invalid }
        switch family {
        case 1:  // AF_INET: source 4, destination 4, ports 2 + 2
            guard length >= 12 else { return .invalid }
            return .header(length: total, client: ClientAddress(family: 4, octets: (word(bytes, 16, 4) << 32, 0)))
        case 2:  // AF_INET6: 16 + 16 + 2 + 2
            guard length >= 36 else { return .invalid }
            let a = ClientAddress(family: 6, octets: (word(bytes, 16, 8), word(bytes, 24, 8)))
            // An IPv4-mapped address (::ffff:a.b.c.d) is the IPv4 client, as from a socket.
            if a.octets.0 == 0 && a.octets.1 >> 32 == 0xFFFF {
                return .header(length: total, client: ClientAddress(family: 4, octets: (a.octets.1 << 32, 0)))
            }
            return .header(length: total, client: a)
        case 0, 3:  // UNSPEC, AF_UNIX: no IP address to take
            return .header(length: total, client: nil)
        default:
            return .invalid
        }
    }
}
