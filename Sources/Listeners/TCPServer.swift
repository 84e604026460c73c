import DNSWire
import Engine
import Dispatch
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// DNS over TCP (RFC 7766): 2-octet framing, many and pipelined queries per connection, an idle
/// timeout, a bound on connections, and back-pressure so a client that does not read cannot make
/// the server buffer without limit.
package final class TCPServer: Sendable {
    let store: SnapshotStore
    let logger: Logger
    let group: MultiThreadedEventLoopGroup
    let channels: Mutex<[Channel]> = Mutex([])
    let connections = Atomic<Int>(0)

    package init(store: SnapshotStore, logger: Logger, threads: Int = 1) {
        self.store = store
        self.logger = logger
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
    }

    package func start(_ addresses: [ListenAddress]) throws {
        for address in addresses {
            let bootstrap = ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 256)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelOption(.writeBufferWaterMark, value: .init(low: 32 * 1024, high: 256 * 1024))
                .childChannelInitializer { [self] channel in
                    let snapshot = store.current
                    let limit = snapshot.listener.tcpMaxConnections
                    if connections.wrappingAdd(1, ordering: .relaxed).newValue > limit {
                        connections.subtract(1, ordering: .relaxed)
                        return channel.close()
                    }
                    channel.closeFuture.whenComplete { _ in self.connections.subtract(1, ordering: .relaxed) }
                    let idle = TimeAmount.milliseconds(Int64(snapshot.listener.tcpIdleTimeout * 1000))
                    return channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: idle))
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(DNSFrameDecoder()))
                        try channel.pipeline.syncOperations.addHandler(DNSQueryHandler(store: self.store))
                    }
                }
            do {
                let channel = try bootstrap.bind(host: address.host, port: address.port).wait()
                channels.withLock { $0.append(channel) }
            } catch {
                throw ListenerError("cannot listen on TCP \(address): \(error)")
            }
        }
    }

    package func stop() {
        for c in channels.withLock({ $0 }) { try? c.close().wait() }
        try? group.syncShutdownGracefully()
    }
}

/// Splits the TCP stream into DNS messages by their 2-octet length (RFC 1035 §4.2.2).
struct DNSFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self) else { return .needMoreData }
        guard buffer.readableBytes >= 2 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 2)
        let message = buffer.readSlice(length: Int(length))!
        context.fireChannelRead(Self.wrapInboundOut(message))
        return .continue
    }
}

/// Answers each framed query in order; transfers stream their messages.
final class DNSQueryHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let store: SnapshotStore
    /// One response buffer per connection, reused for every query on it.
    var scratch = [UInt8](repeating: 0, count: WireLimits.maxMessageSize)

    init(store: SnapshotStore) {
        self.store = store
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var message = unwrapInboundIn(data)
        let bytes = message.readBytes(length: message.readableBytes) ?? []
        let snapshot = store.current
        let client = ClientAddress(bytes: context.remoteAddress?.ipAddress.flatMap(IPAddress.parse) ?? [])
        let isTransfer = bytes.withUnsafeBytes { packet -> Bool in
            guard case .query(let q) = QueryParser.parse(packet) else { return false }
            return q.qtype == RRType.axfr || q.qtype == RRType.ixfr
        }
        if isTransfer {
            // A transfer of a large zone takes seconds to build: never on the event loop, where it
            // would stall every other TCP client. Its answer may overtake it (RFC 7766 §7).
            let loop = context.eventLoop
            let boundContext = NIOLoopBound(context, eventLoop: loop)
            let boundSelf = NIOLoopBound(self, eventLoop: loop)
            DispatchQueue.global(qos: .utility).async {
                let messages = Self.transfer(bytes, snapshot: snapshot, client: client)
                loop.execute {
                    for m in messages { boundSelf.value.write(boundContext.value, m[...]) }
                    boundContext.value.flush()
                }
            }
            return
        }
        let n = bytes.withUnsafeBytes { packet in
            scratch.withUnsafeMutableBytes { out in
                snapshot.engine.respond(to: packet, into: out.baseAddress!, capacity: out.count, transport: .tcp,
                                        client: client)
            }
        }
        if n > 0 { write(context, scratch[0..<n]) }
        // Back-pressure: stop reading while the client does not drain its answers.
        if !context.channel.isWritable { context.channel.setOption(.autoRead, value: false).whenFailure { _ in } }
    }

    /// The messages answering an AXFR/IXFR: the transfer, or one error response.
    static func transfer(_ bytes: [UInt8], snapshot: Snapshot, client: ClientAddress) -> [[UInt8]] {
        bytes.withUnsafeBytes { packet -> [[UInt8]] in
            guard case .query(let q) = QueryParser.parse(packet) else { return [] }
            switch ZoneTransfer.respond(to: packet, query: q, snapshot: snapshot, client: client) {
            case .messages(let messages):
                return messages
            case .refuse(let rcode):
                var out = [UInt8](repeating: 0, count: 512)
                let n = out.withUnsafeMutableBytes { o in
                    snapshot.engine.errorResponse(packet, q, rcode: rcode, withQuestion: true, into: o.baseAddress!,
                                                  capacity: 512, transport: .tcp, client: client)
                }
                return [Array(out[0..<n])]
            }
        }
    }

    func write(_ context: ChannelHandlerContext, _ bytes: ArraySlice<UInt8>) {
        var buffer = context.channel.allocator.buffer(capacity: bytes.count + 2)
        buffer.writeInteger(UInt16(bytes.count))
        buffer.writeBytes(bytes)
        context.write(wrapOutboundOut(buffer), promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { context.channel.setOption(.autoRead, value: true).whenFailure { _ in } }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)  // RFC 7766 §6.2.3: the server closes idle connections
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
