import DNSWire
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import Steering

/// HTTP/1.1 GET over TCP or TLS: the status line, then (when asked) a substring of the body's
/// first bytes. Parses only what it needs, so garbage fails precisely instead of hanging.
final class HTTPProbeHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let attempt: Attempt
    var bytes: [UInt8] = []
    var status: Int? = nil
    var bodyStart: Int? = nil
    /// A failed handshake is being diagnosed: the connection's end is not the result.
    var diagnosing = false
    static let headerLimit = 16384

    init(attempt: Attempt) {
        self.attempt = attempt
    }

    func channelActive(context: ChannelHandlerContext) {
        let s = attempt.spec
        let defaultPort = s.kind == .https ? 443 : 80
        var host = s.host ?? (s.address.contains(":") ? "[\(s.address)]" : s.address)
        if s.host == nil && s.port != defaultPort { host += ":\(s.port)" }
        let request = "GET \(s.path) HTTP/1.1\r\nHost: \(host)\r\nUser-Agent: lodestar-prober/0.1\r\n"
            + "Accept: */*\r\nConnection: close\r\n\r\n"
        // A reset before the request is out fails the write, not a read: report it as the reset it is.
        // Only socket errors: a write failed because TLS gave up is explained by errorCaught.
        let written = context.eventLoop.makePromise(of: Void.self)
        let attempt = attempt
        written.futureResult.whenFailure { error in
            guard error is IOError else { return }
            attempt.finish(ProbeRunner.classify(error, timeout: attempt.spec.timeout, phase: "sending the request"))
        }
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: request)), promise: written)
        context.fireChannelActive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? TLSUserEvent, case .handshakeCompleted = e {
            attempt.phase = "waiting for the response"
            if let handler = try? context.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self),
               let cert = handler.peerCertificate {
                let days = (Double(cert.notValidAfter) - Date().timeIntervalSince1970) / 86400
                attempt.certDaysLeft = days
                if attempt.spec.certMinDays > 0 && days < attempt.spec.certMinDays {
                    attempt.finish(.fail("cert-expiring", "certificate expires in \(String(format: "%.1f", days)) days, "
                        + "fewer than \(attempt.spec.certMinDays)"))
                    return
                }
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        guard !attempt.done else { return }
        if attempt.phase != "reading the response" { attempt.phase = "reading the response" }
        bytes += buffer.readBytes(length: buffer.readableBytes) ?? []
        evaluate(eof: false)
    }

    func channelInactive(context: ChannelHandlerContext) {
        evaluate(eof: true)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard !attempt.done, !diagnosing else { return }
        if let e = error as? NIOSSLError, case .handshakeFailed = e {
            diagnosing = true
            diagnoseTLS(error: e)
            return
        }
        if let e = error as? NIOSSLError, case .uncleanShutdown = e {
            evaluate(eof: true)
            return
        }
        attempt.finish(ProbeRunner.classify(error, timeout: attempt.spec.timeout, phase: attempt.phase))
    }

    /// Decides as soon as the bytes so far allow, or at end of stream.
    func evaluate(eof: Bool) {
        guard !attempt.done, !diagnosing else { return }
        let s = attempt.spec
        if status == nil {
            let prefix = Array("HTTP/".utf8)
            let n = min(bytes.count, prefix.count)
            if bytes.prefix(n).elementsEqual(prefix.prefix(n)) == false {
                attempt.finish(.fail("garbage", "not an HTTP response (starts with \(Self.show(bytes.prefix(16))))"))
                return
            }
            guard let eol = find([13, 10], in: bytes[...]) else {
                if bytes.count > Self.headerLimit {
                    attempt.finish(.fail("garbage", "status line longer than \(Self.headerLimit) bytes"))
                } else if eof {
                    attempt.finish(.fail("closed", bytes.isEmpty ? "connection closed before a response" : "response cut short in the status line"))
                }
                return
            }
            let line = String(decoding: bytes[..<eol], as: UTF8.self).split(separator: " ", maxSplits: 2)
            guard line.count >= 2, let code = Int(line[1]), (100...999).contains(code) else {
                attempt.finish(.fail("garbage", "bad status line \(Self.show(bytes[..<min(eol, 40)]))"))
                return
            }
            status = code
            guard s.expectStatus.contains(where: { $0.contains(code) }) else {
                attempt.finish(.fail("http-status", "HTTP \(code)"))
                return
            }
            if s.expectBody == nil {
                attempt.finish(.ok(attempt.elapsed))
                return
            }
        }
        guard let needle = s.expectBody else { return }
        if bodyStart == nil {
            guard let end = find([13, 10, 13, 10], in: bytes[...]) else {
                if bytes.count > Self.headerLimit {
                    attempt.finish(.fail("garbage", "headers longer than \(Self.headerLimit) bytes"))
                } else if eof {
                    attempt.finish(.fail("closed", "response cut short in the headers"))
                }
                return
            }
            bodyStart = end + 4
        }
        let body = bytes[bodyStart!...].prefix(CheckSpec.bodyLimit)
        if find(Array(needle.utf8), in: body) != nil {
            attempt.finish(.ok(attempt.elapsed))
        } else if eof || body.count >= CheckSpec.bodyLimit {
            attempt.finish(.fail("body", "body lacks \"\(needle)\" in its first \(CheckSpec.bodyLimit) bytes"))
        }
    }

    static func show<C: Collection>(_ b: C) -> String where C.Element == UInt8 {
        "\"" + b.map { (32..<127).contains($0) && $0 != 34 ? String(UnicodeScalar($0)) : String(format: "\\x%02x", $0) }.joined() + "\""
    }
}

/// Where `needle` starts in `hay`, as an index of `hay`.
func find(_ needle: [UInt8], in hay: ArraySlice<UInt8>) -> Int? {
    guard !needle.isEmpty, hay.count >= needle.count else { return nil }
    var i = hay.startIndex
    let last = hay.endIndex - needle.count
    while i <= last {
        if hay[i] == needle[0] && hay[i..<i + needle.count].elementsEqual(needle) { return i }
        i += 1
    }
    return nil
}
