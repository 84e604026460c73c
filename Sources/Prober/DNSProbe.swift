import DNSWire
import Foundation
import Health
import NIOCore

/// Waits for the reply to one DNS query; checks id, question, rcode and (optionally) answers.
final class DNSProbeHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>

    let attempt: Attempt
    let id: UInt16
    let qname: [UInt8]

    init(attempt: Attempt, id: UInt16, qname: [UInt8]) {
        self.attempt = attempt
        self.id = id
        self.qname = qname
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data).data
        let b = buffer.readBytes(length: buffer.readableBytes) ?? []
        let s = attempt.spec
        guard b.count >= 12 else {
            attempt.finish(.fail("garbage", "DNS reply of \(b.count) bytes, shorter than a header"))
            return
        }
        // Someone else's reply (or a spoofed one): keep waiting until the deadline.
        guard UInt16(b[0]) << 8 | UInt16(b[1]) == id, b[2] & 0x80 != 0 else { return }
        // The reply must echo the question asked (RFC 5452 §9.1): name (in any case), type, class IN.
        guard echoesQuestion(b) else {
            attempt.finish(.fail("dns-question", "DNS reply does not echo the question asked"))
            return
        }
        let rcode = b[3] & 0x0F
        let ancount = Int(b[6]) << 8 | Int(b[7])
        if b[2] & 0x02 != 0 {
            attempt.finish(.fail("dns", "DNS reply truncated (TC)"))
        } else if !s.expectRcode.contains(rcode) {
            attempt.finish(.fail("dns-rcode", "DNS rcode \(Rcode.name(Int(rcode)))"))
        } else if s.expectAnswer && ancount == 0 {
            attempt.finish(.fail("dns-answer", "DNS reply without answers"))
        } else {
            attempt.finish(.ok(attempt.elapsed))
        }
    }

    /// QDCOUNT 1 and the question as sent, the name compared without regard to ASCII case.
    func echoesQuestion(_ b: [UInt8]) -> Bool {
        let qd = Int(b[4]) << 8 | Int(b[5])
        let end = 12 + qname.count
        guard qd == 1, b.count >= end + 4 else { return false }
        let same = b.withUnsafeBytes { r in
            qname.withUnsafeBytes { Name.equal(UnsafeRawBufferPointer(rebasing: r[12..<end]), $0) }
        }
        guard same else { return false }
        let t = UInt16(b[end]) << 8 | UInt16(b[end + 1])
        let c = UInt16(b[end + 2]) << 8 | UInt16(b[end + 3])
        return t == attempt.spec.qtype && c == 1
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        attempt.finish(ProbeRunner.classify(error, timeout: attempt.spec.timeout, phase: attempt.phase))
    }
}
