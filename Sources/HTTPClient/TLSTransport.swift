import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import Settings
import Synchronization

extension TLSSettings {
    /// Loads the files (a config check).
    package func validate() throws -> Bool {
        _ = try context()
        return true
    }

    /// A client context: the certificate verified against `caFile` (else the system's roots) and
    /// the address or name connected to; the client certificate when given.
    func context() throws -> NIOSSLContext {
        var c = TLSConfiguration.makeClientConfiguration()
        c.minimumTLSVersion = .tlsv12
        c.certificateVerification = .fullVerification
        if let caFile { c.trustRoots = .file(caFile) }
        if let certFile, let keyFile {
            c.certificateChain = try NIOSSLCertificate.fromPEMFile(certFile).map { .certificate($0) }
            c.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem))
        }
        return try NIOSSLContext(configuration: c)
    }
}

/// A TLS connection through SwiftNIO, driven from a blocking caller (the cluster's threads, never
/// an event loop): writes wait for their completion and reads for data, both under deadlines.
final class TLSTransport: ByteTransport, @unchecked Sendable {
    /// One event loop for every TLS connection to etcd (they are few and small).
    static let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    /// Contexts by settings: loading certificates and keys once.
    static let contexts = NSLock()
    nonisolated(unsafe) static var cache: [String: NIOSSLContext] = [:]

    final class Inbox: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let condition = NSCondition()
        var data: [UInt8] = []
        var ended = false
        var error: Error? = nil

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var b = unwrapInboundIn(data)
            let bytes = b.readBytes(length: b.readableBytes) ?? []
            condition.withLock {
                self.data += bytes
                condition.broadcast()
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            condition.withLock {
                ended = true
                condition.broadcast()
            }
        }

        func errorCaught(context: ChannelHandlerContext, error: Error) {
            condition.withLock {
                self.error = error
                ended = true
                condition.broadcast()
            }
            context.close(promise: nil)
        }
    }

    let channel: Channel
    let inbox = Inbox()
    let endpoint: String

    init(host: String, port: Int, settings: TLSSettings, deadline: Date) throws {
        endpoint = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        let key = "\(settings.caFile ?? "")|\(settings.certFile ?? "")|\(settings.keyFile ?? "")"
        let context = try Self.contexts.withLock { () throws -> NIOSSLContext in
            if let c = Self.cache[key] { return c }
            let c = try settings.context()
            Self.cache[key] = c
            return c
        }
        let inbox = inbox
        let left = max(0.05, deadline.timeIntervalSinceNow)
        let connect = ClientBootstrap(group: Self.group)
            .connectTimeout(.milliseconds(Int64(left * 1000)))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // An address is verified against the certificate's IP SANs (no SNI for addresses).
                    try channel.pipeline.syncOperations.addHandler(
                        try NIOSSLClientHandler(context: context, serverHostname: nil))
                    try channel.pipeline.syncOperations.addHandler(inbox)
                }
            }
            .connect(host: host, port: port)
        channel = try Self.wait(connect, deadline, endpoint)
    }

    deinit { channel.close(promise: nil) }

    /// A future's value, or a failure at the deadline (the future is left to finish on its loop).
    static func wait<T: Sendable>(_ future: EventLoopFuture<T>, _ deadline: Date, _ endpoint: String) throws -> T {
        let done = DispatchSemaphore(value: 0)
        let result = Mutex<Result<T, Error>?>(nil)
        future.whenComplete { r in
            result.withLock { $0 = r }
            done.signal()
        }
        guard done.wait(timeout: .now() + max(0, deadline.timeIntervalSinceNow)) == .success,
            let r = result.withLock({ $0 })
        else { throw HTTPConnection.Failure("\(endpoint) did not answer in time", code: .timeout) }
        do {
            return try r.get()
        } catch {
            throw HTTPConnection.Failure("\(endpoint): \(error)", code: .closed)
        }
    }

    func abort() { channel.close(promise: nil) }

    func send(_ bytes: [UInt8], deadline: Date) throws {
        let write = channel.writeAndFlush(channel.allocator.buffer(bytes: bytes))
        try Self.wait(write, deadline, endpoint)
    }

    func receive(deadline: Date) throws -> [UInt8] {
        try inbox.condition.withLock {
            while inbox.data.isEmpty && !inbox.ended {
                guard inbox.condition.wait(until: deadline) else {
                    throw HTTPConnection.Failure("\(endpoint) did not answer in time", code: .timeout)
                }
            }
            if inbox.data.isEmpty, let e = inbox.error {
                throw HTTPConnection.Failure("\(endpoint): \(e)", code: .closed)
            }
            defer { inbox.data = [] }
            return inbox.data
        }
    }
}
