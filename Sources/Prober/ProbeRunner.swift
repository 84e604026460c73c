import Foundation
package import Health
package import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

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

    func startStream(_ a: Attempt, _ address: SocketAddress) {
        let tls: NIOSSLContext?
        do {
            tls = a.spec.kind == .https ? try context(verify: a.spec.verifyTLS, caFile: a.spec.caFile) : nil
        } catch {
            a.finish(.fail("tls", "cannot set up TLS: \(error)"))
            return
        }
        let spec = a.spec
        var bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(.nanoseconds(Int64(spec.timeout * 1e9)))
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
        if let source = spec.source {
            guard let local = try? SocketAddress(ipAddress: source, port: 0) else {
                a.finish(.fail("config", "\(source) is not an IP address"))
                return
            }
            bootstrap = bootstrap.bind(to: local)
        }
        bootstrap
            .channelInitializer { channel in
                do {
                    if spec.kind == .tcp { return channel.eventLoop.makeSucceededVoidFuture() }
                    let ops = channel.pipeline.syncOperations
                    if let tls {
                        let name = spec.sni ?? spec.host.flatMap { isIPLiteral($0) ? nil : $0 }
                        try ops.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: name))
                    }
                    try ops.addHandler(HTTPRequestEncoder())
                    try ops.addHandler(FirstBytesHandler(attempt: a))
                    try ops.addHandler(ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .dropBytes)))
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
                    if a.done {
                        channel.close(promise: nil)
                        return
                    }
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

    package static func errnoResult(_ code: Int32, phase: String) -> ProbeResult {
        switch code {
        case EMFILE, ENFILE, ENOBUFS, ENOMEM, EADDRNOTAVAIL, EAGAIN:
            // This host's shortage (descriptors, buffers, local ports), not the target's failure.
            return .local("local error \(phase): \(String(cString: strerror(code)))")
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
