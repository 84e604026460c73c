import DNSWire
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import Steering

/// The result of one probe: pass or fail with a precise reason, and what else was learnt.
package struct ProbeResult: Sendable, Equatable {
    package var outcome: CheckOutcome
    /// A short class of the failure for metrics (`timeout`, `refused`, `http-status`, …); `ok` on success.
    package var kind: String
    /// HTTPS: days until the server's certificate expires (negative once expired).
    package var certDaysLeft: Double? = nil

    static func ok(_ rtt: Double, certDaysLeft: Double? = nil) -> ProbeResult {
        ProbeResult(outcome: .success(rtt: rtt), kind: "ok", certDaysLeft: certDaysLeft)
    }

    static func fail(_ kind: String, _ reason: String, certDaysLeft: Double? = nil) -> ProbeResult {
        ProbeResult(outcome: .failure(reason: reason), kind: kind, certDaysLeft: certDaysLeft)
    }
}

/// Runs single checks on one event loop. Every probe has a deadline (`timeout`) enforced by the
/// loop whatever the origin does: accept and never answer, trickle bytes, reset, send garbage.
package final class ProbeRunner: @unchecked Sendable {
    let loop: EventLoop
    /// TLS contexts by (verify, CA file): loading trust roots is expensive, a context is reusable.
    /// Loop-confined.
    private var contexts: [String: NIOSSLContext] = [:]

    package init(loop: EventLoop) {
        self.loop = loop
    }

    /// A failure result (for callers that could not run a probe at all).
    package static func failure(_ kind: String, _ reason: String) -> ProbeResult { .fail(kind, reason) }

    /// Starts one check; the future completes on `loop` within `spec.timeout` (plus scheduling).
    package func run(_ spec: CheckSpec) -> EventLoopFuture<ProbeResult> {
        let attempt = Attempt(loop: loop, spec: spec)
        loop.execute { self.start(attempt) }
        return attempt.promise.futureResult
    }

    private func start(_ a: Attempt) {
        a.deadline = loop.scheduleTask(in: .nanoseconds(Int64(a.spec.timeout * 1e9))) {
            a.finish(.fail("timeout", "timeout after \(seconds(a.spec.timeout)) \(a.phase)"))
        }
        let address: SocketAddress
        do {
            address = try SocketAddress(ipAddress: a.spec.address, port: a.spec.port)
        } catch {
            a.finish(.fail("config", "\(a.spec.address) is not an IP address"))
            return
        }
        switch a.spec.kind {
        case .dns: startDNS(a, address)
        case .tcp, .http, .https: startStream(a, address)
        }
    }

    private func startStream(_ a: Attempt, _ address: SocketAddress) {
        let tls: NIOSSLContext?
        do {
            tls = a.spec.kind == .https ? try context(verify: a.spec.verifyTLS, caFile: a.spec.caFile) : nil
        } catch {
            a.finish(.fail("tls", "cannot set up TLS: \(error)"))
            return
        }
        let spec = a.spec
        ClientBootstrap(group: loop)
            .connectTimeout(.nanoseconds(Int64(spec.timeout * 1e9)))
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelInitializer { channel in
                do {
                    if spec.kind == .tcp { return channel.eventLoop.makeSucceededVoidFuture() }
                    let ops = channel.pipeline.syncOperations
                    if let tls {
                        let name = spec.sni ?? spec.host.flatMap { isIPLiteral($0) ? nil : $0 }
                        try ops.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: name))
                    }
                    try ops.addHandler(HTTPProbeHandler(attempt: a))
                    return channel.eventLoop.makeSucceededVoidFuture()
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
            .connect(to: address)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    a.channel = channel
                    if a.done { channel.close(promise: nil); return }
                    if spec.kind == .tcp {
                        a.finish(.ok(a.elapsed))
                    } else {
                        a.phase = spec.kind == .https ? "in the TLS handshake" : "waiting for the response"
                    }
                case .failure(let error):
                    a.finish(Self.classify(error, timeout: spec.timeout, phase: "connecting"))
                }
            }
    }

    private func startDNS(_ a: Attempt, _ address: SocketAddress) {
        let spec = a.spec
        guard let qname = Name.fromText(spec.query.hasSuffix(".") ? spec.query : spec.query + ".") else {
            a.finish(.fail("config", "\"\(spec.query)\" is not a domain name"))
            return
        }
        let id = UInt16.random(in: 0...UInt16.max)
        let query: [UInt8] = [UInt8(id >> 8), UInt8(id & 0xFF), 0, 0, 0, 1, 0, 0, 0, 0, 0, 0] + qname
            + [UInt8(spec.qtype >> 8), UInt8(spec.qtype & 0xFF), 0, 1]
        let bind: SocketAddress
        do {
            bind = try SocketAddress(ipAddress: address.protocol == .inet6 ? "::" : "0.0.0.0", port: 0)
        } catch {
            a.finish(.fail("error", "\(error)"))
            return
        }
        a.phase = "waiting for the DNS reply"
        DatagramBootstrap(group: loop)
            .channelInitializer { channel in
                do {
                    try channel.pipeline.syncOperations.addHandler(DNSProbeHandler(attempt: a, id: id, qname: qname))
                    return channel.eventLoop.makeSucceededVoidFuture()
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
            .bind(to: bind)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    a.channel = channel
                    if a.done { channel.close(promise: nil); return }
                    // Connected, so ICMP port unreachable comes back as "connection refused".
                    channel.connect(to: address).flatMap {
                        channel.writeAndFlush(AddressedEnvelope(remoteAddress: address,
                                                                data: channel.allocator.buffer(bytes: query)))
                    }.whenFailure { error in a.finish(Self.classify(error, timeout: spec.timeout, phase: "sending")) }
                case .failure(let error):
                    a.finish(.fail("error", "cannot open a UDP socket: \(error)"))
                }
            }
    }

    /// A TLS context for these settings (system trust roots unless `caFile`).
    func context(verify: Bool, caFile: String?) throws -> NIOSSLContext {
        let key = "\(verify)|\(caFile ?? "")"
        if let c = contexts[key] { return c }
        var config = TLSConfiguration.makeClientConfiguration()
        config.certificateVerification = verify ? .fullVerification : .none
        if let caFile { config.trustRoots = .file(caFile) }
        let c = try NIOSSLContext(configuration: config)
        contexts[key] = c
        return c
    }

    /// A precise reason for a socket-level failure.
    static func classify(_ error: Error, timeout: Double, phase: String) -> ProbeResult {
        if let e = error as? ChannelError {
            switch e {
            case .connectTimeout: return .fail("timeout", "timeout after \(seconds(timeout)) \(phase)")
            case .eof, .outputClosed, .alreadyClosed, .ioOnClosedChannel:
                return .fail("closed", "connection closed \(phase)")
            default: return .fail("error", "\(e) \(phase)")
            }
        }
        if let e = error as? IOError {
            return errnoResult(e.errnoCode, phase: phase)
        }
        if let e = error as? NIOSSLError {
            return .fail("tls", "TLS failed: \(e)")
        }
        return .fail("error", "\(error)")
    }

    static func errnoResult(_ code: Int32, phase: String) -> ProbeResult {
        switch code {
        case ECONNREFUSED: return .fail("refused", "connection refused")
        case ECONNRESET, EPIPE: return .fail("reset", "connection reset \(phase)")
        case EHOSTUNREACH, ENETUNREACH: return .fail("unreachable", "no route to host")
        case ETIMEDOUT: return .fail("timeout", "connection timed out \(phase)")
        default: return .fail("error", "\(String(cString: strerror(code))) \(phase)")
        }
    }
}

/// Whether `s` is an IPv4 or IPv6 address (no SNI is sent for those).
func isIPLiteral(_ s: String) -> Bool {
    var buf = [UInt8](repeating: 0, count: 16)
    return inet_pton(AF_INET, s, &buf) == 1 || inet_pton(AF_INET6, s, &buf) == 1
}

/// `2 s`, `0.5 s`: seconds without trailing zeros, for messages.
package func seconds(_ s: Double) -> String {
    s == s.rounded() ? "\(Int(s)) s" : "\(s) s"
}

/// One probe in flight; loop-confined. `finish` is idempotent: the first result wins, the channel
/// is closed and the deadline cancelled.
final class Attempt: @unchecked Sendable {
    let loop: EventLoop
    let spec: CheckSpec
    let promise: EventLoopPromise<ProbeResult>
    let started = NIODeadline.now()
    var deadline: Scheduled<Void>? = nil
    var channel: Channel? = nil
    var phase = "connecting"
    var done = false
    var certDaysLeft: Double? = nil

    init(loop: EventLoop, spec: CheckSpec) {
        self.loop = loop
        self.spec = spec
        self.promise = loop.makePromise()
    }

    var elapsed: Double { Double((NIODeadline.now() - started).nanoseconds) / 1e9 }

    func finish(_ r: ProbeResult) {
        guard !done else { return }
        done = true
        deadline?.cancel()
        channel?.close(promise: nil)
        var r = r
        if r.certDaysLeft == nil { r.certDaysLeft = certDaysLeft }
        promise.succeed(r)
    }
}

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

    /// A failed handshake: a second connection without validation fetches the certificate to say why.
    func diagnoseTLS(error: NIOSSLError) {
        let a = attempt
        guard a.spec.verifyTLS, let address = try? SocketAddress(ipAddress: a.spec.address, port: a.spec.port) else {
            a.finish(.fail("tls", "TLS handshake failed: \(error)"))
            return
        }
        var config = TLSConfiguration.makeClientConfiguration()
        config.certificateVerification = .none
        guard let ctx = try? NIOSSLContext(configuration: config) else {
            a.finish(.fail("tls", "TLS handshake failed: \(error)"))
            return
        }
        let host = a.spec.sni ?? a.spec.host ?? a.spec.address
        let grabbed = a.loop.makePromise(of: NIOSSLCertificate?.self)
        let limit = a.loop.scheduleTask(in: .seconds(1)) { grabbed.succeed(nil) }
        ClientBootstrap(group: a.loop)
            .connectTimeout(.seconds(1))
            .channelInitializer { ch in
                do {
                    try ch.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: ctx, serverHostname: nil))
                    try ch.pipeline.syncOperations.addHandler(CertificateGrabber(promise: grabbed))
                    return ch.eventLoop.makeSucceededVoidFuture()
                } catch {
                    return ch.eventLoop.makeFailedFuture(error)
                }
            }
            .connect(to: address)
            .whenComplete { r in
                if case .failure = r { grabbed.succeed(nil) }
                if case .success(let ch) = r { grabbed.futureResult.whenComplete { _ in ch.close(promise: nil) } }
            }
        grabbed.futureResult.whenComplete { _ in limit.cancel() }
        grabbed.futureResult
            .whenComplete { result in
                let now = Date().timeIntervalSince1970
                guard case .success(let c?) = result else {
                    a.finish(.fail("tls", "TLS handshake failed: \(error)"))
                    return
                }
                let days = (Double(c.notValidAfter) - now) / 86400
                let fmt = ISO8601DateFormatter()
                fmt.formatOptions = [.withFullDate]
                if days < 0 {
                    a.finish(.fail("cert-expired", "certificate expired on \(fmt.string(from: Date(timeIntervalSince1970: Double(c.notValidAfter))))",
                                   certDaysLeft: days))
                } else if Double(c.notValidBefore) > now {
                    a.finish(.fail("cert-invalid", "certificate not valid before \(fmt.string(from: Date(timeIntervalSince1970: Double(c.notValidBefore))))",
                                   certDaysLeft: days))
                } else {
                    a.finish(.fail("cert-untrusted", "certificate not trusted for \(host) (unknown issuer or another name)",
                                   certDaysLeft: days))
                }
            }
    }

    static func show<C: Collection>(_ b: C) -> String where C.Element == UInt8 {
        "\"" + b.map { (32..<127).contains($0) && $0 != 34 ? String(UnicodeScalar($0)) : String(format: "\\x%02x", $0) }.joined() + "\""
    }
}

/// Completes with the peer's certificate once a (non-validating) handshake is done, or nil.
final class CertificateGrabber: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    let promise: EventLoopPromise<NIOSSLCertificate?>

    init(promise: EventLoopPromise<NIOSSLCertificate?>) {
        self.promise = promise
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? TLSUserEvent, case .handshakeCompleted = e {
            let h = try? context.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self)
            promise.succeed(h?.peerCertificate)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        promise.succeed(nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.succeed(nil)
        context.fireChannelInactive()
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

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        attempt.finish(ProbeRunner.classify(error, timeout: attempt.spec.timeout, phase: attempt.phase))
    }
}
