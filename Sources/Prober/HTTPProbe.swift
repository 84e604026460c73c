import Foundation
import Health
import NIOCore
import NIOHTTP1
import NIOSSL
import NIOTLS

/// HTTP/1.1 GET over TCP or TLS: the status, then (when asked) a substring of the body's first
/// `CheckSpec.bodyLimit` octets. The response is decoded by NIOHTTP1 (`HTTPResponseDecoder` in
/// front of this handler): chunked transfer encoding and content lengths as HTTP defines them,
/// so `expect-body` matches across chunks and a malformed response fails as garbage.
final class HTTPProbeHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    let attempt: Attempt
    var status: Int? = nil
    var body: [UInt8] = []
    /// A failed handshake is being diagnosed: the connection's end is not the result.
    var diagnosing = false

    init(attempt: Attempt) {
        self.attempt = attempt
    }

    func channelActive(context: ChannelHandlerContext) {
        let s = attempt.spec
        let defaultPort = s.kind == .https ? 443 : 80
        var host = s.host ?? (s.address.contains(":") ? "[\(s.address)]" : s.address)
        if s.host == nil && s.port != defaultPort { host += ":\(s.port)" }
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: host)
        headers.add(name: "User-Agent", value: "lodestar-prober/0.1")
        headers.add(name: "Accept", value: "*/*")
        headers.add(name: "Connection", value: "close")
        // A reset before the request is out fails the write, not a read: report it as the reset it is.
        // Only socket errors: a write failed because TLS gave up is explained by errorCaught.
        let written = context.eventLoop.makePromise(of: Void.self)
        let attempt = attempt
        written.futureResult.whenFailure { error in
            guard error is IOError else { return }
            attempt.finish(ProbeRunner.classify(error, timeout: attempt.spec.timeout, phase: "sending the request"))
        }
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: s.path, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: written)
        context.fireChannelActive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? TLSUserEvent, case .handshakeCompleted = e {
            attempt.phase = "waiting for the response"
            if let handler = try? context.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self),
                let cert = handler.peerCertificate
            {
                let days = (Double(cert.notValidAfter) - Date().timeIntervalSince1970) / 86400
                attempt.certDaysLeft = days
                attempt.certExpiry = Double(cert.notValidAfter)
                if attempt.spec.certMinDays > 0 && days < attempt.spec.certMinDays {
                    attempt.finish(
                        .fail(
                            "cert-expiring",
                            "certificate expires in \(String(format: "%.1f", days)) days, "
                                + "fewer than \(attempt.spec.certMinDays)"))
                    return
                }
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !attempt.done, !diagnosing else { return }
        if attempt.phase != "reading the response" { attempt.phase = "reading the response" }
        let s = attempt.spec
        switch unwrapInboundIn(data) {
        case .head(let head):
            let code = Int(head.status.code)
            status = code
            guard s.expectStatus.contains(where: { $0.contains(code) }) else {
                attempt.finish(.fail("http-status", "HTTP \(code)"))
                return
            }
            if s.expectBody == nil { attempt.finish(.ok(attempt.elapsed)) }
        case .body(var chunk):
            guard let needle = s.expectBody else { return }
            let room = CheckSpec.bodyLimit - body.count
            if room > 0 { body += chunk.readBytes(length: min(room, chunk.readableBytes)) ?? [] }
            if find(Array(needle.utf8), in: body[...]) != nil {
                attempt.finish(.ok(attempt.elapsed))
            } else if body.count >= CheckSpec.bodyLimit {
                attempt.finish(.fail("body", "body lacks \"\(needle)\" in its first \(CheckSpec.bodyLimit) bytes"))
            }
        case .end:
            if let needle = s.expectBody {
                attempt.finish(.fail("body", "body lacks \"\(needle)\" in its first \(CheckSpec.bodyLimit) bytes"))
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !attempt.done && !diagnosing {
            if status == nil {
                attempt.finish(.fail("closed", "connection closed before a complete response head"))
            } else if let needle = attempt.spec.expectBody {
                attempt.finish(.fail("body", "connection closed before the body held \"\(needle)\""))
            }
        }
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
            return  // the end of the stream decides (channelInactive)
        }
        if let e = error as? HTTPParserError {
            let first = attempt.firstBytes
            if status != nil, case .invalidEOFState = e {
                attempt.finish(.fail("body", "response cut short in the body"))
            } else if case .invalidEOFState = e {
                attempt.finish(.fail("closed", "response cut short in the head"))
            } else if status == nil && !first.starts(with: Array("HTTP/".utf8).prefix(first.count)) {
                attempt.finish(.fail("garbage", "not an HTTP response (starts with \(Self.show(first.prefix(16))))"))
            } else {
                attempt.finish(.fail("garbage", "malformed HTTP response (\(e))"))
            }
            return
        }
        attempt.finish(ProbeRunner.classify(error, timeout: attempt.spec.timeout, phase: attempt.phase))
    }

    static func show<C: Collection>(_ b: C) -> String where C.Element == UInt8 {
        "\""
            + b.map { (32..<127).contains($0) && $0 != 34 ? String(UnicodeScalar($0)) : String(format: "\\x%02x", $0) }
            .joined() + "\""
    }
}

/// In front of the HTTP decoder: notes that the response has started and keeps its first octets
/// (for the reason given when they are not HTTP); passes everything on.
final class FirstBytesHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    let attempt: Attempt

    init(attempt: Attempt) { self.attempt = attempt }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        if attempt.firstBytes.count < 16 {
            attempt.firstBytes +=
                buffer.getBytes(
                    at: buffer.readerIndex, length: min(16 - attempt.firstBytes.count, buffer.readableBytes)) ?? []
            if !attempt.done { attempt.phase = "reading the response" }
        }
        context.fireChannelRead(data)
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
