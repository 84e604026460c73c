public import DNSWire
import Protection

extension QueryEngine {
    /// What goes out instead of a response the rate limiter holds back: nil when the query carries
    /// a valid server cookie (the client proved its address: the response stays as it is); else,
    /// when `slip`, a small response that makes a real client retry — BADCOOKIE with a fresh server
    /// cookie to a client that sent a cookie (RFC 7873 §5.2.3), the question with TC set to any
    /// other (it retries over TCP) — and its length; 0 to send nothing.
    public func holdBack(
        _ packet: UnsafeRawBufferPointer, into out: UnsafeMutableRawPointer, capacity: Int,
        client: ClientAddress, slip: Bool
    ) -> Int? {
        var q = Query()
        let questionParsed: Bool
        switch QueryParser.parse(packet, into: &q) {
        case .drop: return 0
        case .query: questionParsed = true
        case .error(_, let parsed): questionParsed = parsed
        }
        let secret = box.options.cookieSecret
        if q.hasCookie, let secret, let base = packet.baseAddress,
            ServerCookie.isValid(
                UnsafeRawBufferPointer(start: base + Int(q.cookieAt), count: Int(q.cookieLength)), client: client,
                now: ServerCookie.now(), secret: secret)
        {
            return nil
        }
        guard slip else { return 0 }
        if q.hasCookie && secret != nil {
            return errorResponse(
                packet, q, rcode: Rcode.badCookie, withQuestion: questionParsed, into: out,
                capacity: capacity, transport: .udp, client: client)
        }
        let n = errorResponse(
            packet, q, rcode: Rcode.noError, withQuestion: questionParsed, into: out,
            capacity: capacity, transport: .udp, client: client)
        if n >= 4 {
            out.storeBytes(of: out.load(fromByteOffset: 2, as: UInt8.self) | 0x02, toByteOffset: 2, as: UInt8.self)
        }
        return n
    }
}
