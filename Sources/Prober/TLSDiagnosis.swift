import Foundation
import Health
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

/// Why a TLS handshake failed.
extension HTTPProbeHandler {
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
                    try ch.pipeline.syncOperations.addHandler(
                        try NIOSSLClientHandler(context: ctx, serverHostname: nil))
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
                a.certExpiry = Double(c.notValidAfter)
                let fmt = ISO8601DateFormatter()
                fmt.formatOptions = [.withFullDate]
                if days < 0 {
                    a.finish(
                        .fail(
                            "cert-expired",
                            "certificate expired on \(fmt.string(from: Date(timeIntervalSince1970: Double(c.notValidAfter))))",
                            certDaysLeft: days))
                } else if Double(c.notValidBefore) > now {
                    a.finish(
                        .fail(
                            "cert-invalid",
                            "certificate not valid before \(fmt.string(from: Date(timeIntervalSince1970: Double(c.notValidBefore))))",
                            certDaysLeft: days))
                } else {
                    a.finish(
                        .fail(
                            "cert-untrusted", "certificate not trusted for \(host) (unknown issuer or another name)",
                            certDaysLeft: days))
                }
            }
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
