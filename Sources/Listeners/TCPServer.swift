import CLodestarSys
package import DNSWire
import Dispatch
package import Engine
import Glibc
package import Logging
import NIOCore
import NIOPosix
import Protection
import Synchronization

/// DNS over TCP (RFC 7766): 2-octet framing, many and pipelined queries per connection, and
/// bounds on everything a client can make the server hold:
///
/// - connections: `tcp-max-connections` in all, `tcp-max-connections-per-client` from one address;
///   beyond either, a new connection is closed at once;
/// - time: `tcp-idle-timeout` with no message under way, and `tcp-message-timeout` for a whole
///   message from its first octet (a client sending one octet every few seconds is closed then,
///   not kept alive by each octet);
/// - memory: answers are written only while the client drains them; meanwhile reading stops and
///   the queries already read wait (what one read can bring, at most);
/// - transfers: one at a time per connection, streamed a message at a time as the client reads,
///   and at most `transfer.concurrency` at once in all (beyond that, REFUSED).
package final class TCPServer: Sendable {
    let store: SnapshotStore
    let logger: Logger
    let group: MultiThreadedEventLoopGroup
    let channels: Mutex<[Channel]> = Mutex([])
    let connections = Atomic<Int>(0)
    /// Open connections per client address.
    let perClient: Mutex<[ClientAddress: Int]> = Mutex([:])
    /// Transfers under way.
    let transfers = Atomic<Int>(0)
    /// The process's descriptor budget for TCP connections (`DescriptorBudget`), below the
    /// configured maximum when the limit on open files is lower.
    let descriptorCap: Int
    /// Refused connections, failed accepts and PROXY drops, logged at most every 10 s a reason.
    let throttle: LogThrottle

    package init(store: SnapshotStore, logger: Logger, threads: Int = 1, descriptorCap: Int = .max) {
        self.store = store
        self.logger = logger
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        self.descriptorCap = descriptorCap
        self.throttle = LogThrottle(logger: logger)
    }

    /// Listening sockets opened by `open`, served by `start`.
    let opened: Mutex<[(address: ListenAddress, fd: Int32)]> = Mutex([])

    /// Binds and listens on every address (failing loudly), before privileges are dropped.
    package func open(_ addresses: [ListenAddress]) throws {
        for address in addresses {
            let fd: Int32 = address.withSockaddr { sa, len in lodestar_tcp_listen(sa, len, 256) }
            guard fd >= 0 else {
                throw ListenerError("cannot listen on TCP \(address): \(String(cString: strerror(-fd)))")
            }
            opened.withLock { $0.append((address, fd)) }
        }
    }

    /// Serves every address `open` bound.
    package func start() throws {
        for (address, fd) in opened.withLock({ $0 }) {
            let bootstrap = ServerBootstrap(group: group)
                .serverChannelInitializer { [self] channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            AcceptFailureLogger(throttle: throttle, address: "\(address)"))
                    }
                }
                // IPPROTO_TCP's TCP_NODELAY: `.socketOption(.tcp_nodelay)` would set SOL_SOCKET option 1,
                // SO_DEBUG, which needs CAP_NET_ADMIN and closed every connection of an unprivileged server.
                .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                .childChannelOption(.writeBufferWaterMark, value: .init(low: 32 * 1024, high: 128 * 1024))
                .childChannelInitializer { [self] channel in
                    let snapshot = store.current
                    let client = ClientAddress(bytes: channel.remoteAddress?.ipAddress.flatMap(IPAddress.parse) ?? [])
                    guard admit(client, snapshot.listener) else {
                        let peer = IPAddress.format(client.bytes)
                        let o = snapshot.listener
                        throttle.warn(
                            .tcpRefused, peer: peer,
                            """
                            TCP connection from \(peer) closed: over tcp-max-connections (\(o.tcpMaxConnections), \
                            descriptor budget \(descriptorCap)) or tcp-max-connections-per-client (\(o.tcpMaxConnectionsPerClient))
                            """)
                        return channel.close()
                    }
                    channel.closeFuture.whenComplete { _ in self.release(client) }
                    let idle = TimeAmount.milliseconds(Int64(snapshot.listener.tcpIdleTimeout * 1000))
                    let handler = DNSConnectionHandler(
                        server: self, client: client,
                        messageTimeout: .milliseconds(Int64(snapshot.listener.tcpMessageTimeout * 1000)),
                        proxyAllow: snapshot.listener.proxyAllow)
                    return channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            IdleStateHandler(readTimeout: idle, writeTimeout: idle))
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                }
            do {
                let channel = try bootstrap.withBoundSocket(fd).wait()
                channels.withLock { $0.append(channel) }
            } catch {
                throw ListenerError("cannot serve TCP on \(address): \(error)")
            }
        }
        opened.withLock { $0 = [] }
    }

    /// Counts a new connection, or says it is one too many (in all, or from its address).
    func admit(_ client: ClientAddress, _ o: ListenerOptions) -> Bool {
        let limit = min(o.tcpMaxConnections, descriptorCap)
        if connections.wrappingAdd(1, ordering: .relaxed).newValue > limit {
            connections.subtract(1, ordering: .relaxed)
            return false
        }
        let ok = perClient.withLock { counts -> Bool in
            let n = counts[client, default: 0]
            // A PROXY peer (dnsdist, a balancer) carries many clients: only the total bounds it.
            guard n < o.tcpMaxConnectionsPerClient || o.proxyAllow.allows(client) else { return false }
            counts[client] = n + 1
            return true
        }
        if !ok { connections.subtract(1, ordering: .relaxed) }
        return ok
    }

    func release(_ client: ClientAddress) {
        connections.subtract(1, ordering: .relaxed)
        perClient.withLock { counts in
            let n = counts[client, default: 1] - 1
            counts[client] = n > 0 ? n : nil
        }
    }

    /// Takes a transfer slot, or says all are in use.
    func beginTransfer(limit: Int) -> Bool {
        if transfers.wrappingAdd(1, ordering: .relaxed).newValue > limit {
            transfers.subtract(1, ordering: .relaxed)
            return false
        }
        return true
    }

    func endTransfer() { transfers.subtract(1, ordering: .relaxed) }

    package func stop() {
        for c in channels.withLock({ $0 }) { try? c.close().wait() }
        try? group.syncShutdownGracefully()
    }
}

/// One TCP connection: splits the stream into DNS messages by their 2-octet length (RFC 1035
/// §4.2.2), answers them in order while the client drains the answers, and streams transfers.
final class DNSConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let server: TCPServer
    /// The client: the peer, or the source in its PROXY v2 header.
    var client: ClientAddress
    /// PROXY protocol: the connection must start with a header (an allowed peer), or must not (any
    /// other peer, while `proxy-protocol.allow` is set); nil once settled.
    enum ProxyExpectation { case header, noHeader }
    var proxy: ProxyExpectation?
    let messageTimeout: TimeAmount
    /// Octets of a message not yet complete.
    var buffer: ByteBuffer? = nil
    /// Closes the connection when a message started is not complete in time.
    var deadline: Scheduled<Void>? = nil
    /// Messages read and not yet answered (reading stops while there are any).
    var pending = CircularBuffer<[UInt8]>()
    /// The transfer being streamed, if any: nothing else is answered meanwhile.
    var transfer: TransferStream? = nil
    /// One response buffer per connection, reused for every query on it.
    var scratch = [UInt8](repeating: 0, count: WireLimits.maxMessageSize)
    var closed = false

    init(server: TCPServer, client: ClientAddress, messageTimeout: TimeAmount, proxyAllow: AccessList) {
        self.server = server
        self.client = client
        self.messageTimeout = messageTimeout
        proxy = proxyAllow.isEmpty ? nil : (proxyAllow.allows(client) ? .header : .noHeader)
    }

    /// Settles the PROXY header at the start of the stream: true to go on framing messages, false
    /// to wait for more octets; closes the connection when it is missing or not allowed.
    func settleProxy(_ context: ChannelHandlerContext, _ expect: ProxyExpectation) -> Bool {
        let parsed = buffer!.withUnsafeReadableBytes { ProxyHeader.parse($0) }
        switch (expect, parsed) {
        case (.header, .header(let length, let source)):
            if let source { client = source }
            buffer!.moveReaderIndex(forwardBy: length)
            server.store.current.metrics.record(.proxy(.proxied))
        case (.header, .invalid):
            server.store.current.metrics.record(.proxy(.noHeader))
            server.throttle.proxyDrop(IPAddress.format(client.bytes), allowed: true, tcp: true)
            closed = true
            context.close(promise: nil)
            return false
        case (.noHeader, .incomplete), (.header, .incomplete):
            armDeadline(context)
            return false
        case (.noHeader, .header):
            server.store.current.metrics.record(.proxy(.notAllowed))
            logNotAllowed()
            closed = true
            context.close(promise: nil)
            return false
        case (.noHeader, .invalid):
            // Not a header: but a partial signature that goes wrong later is a header too.
            if buffer!.readableBytes >= ProxyHeader.signature.count,
                buffer!.withUnsafeReadableBytes({ ProxyHeader.startsWithSignature($0) })
            {
                server.store.current.metrics.record(.proxy(.notAllowed))
                logNotAllowed()
                closed = true
                context.close(promise: nil)
                return false
            }
        }
        proxy = nil
        return true
    }

    func logNotAllowed() {
        server.throttle.proxyDrop(IPAddress.format(client.bytes), allowed: false, tcp: true)
    }

    /// The whole message (or header) is due within the timeout of its first octet; more octets do not extend it.
    func armDeadline(_ context: ChannelHandlerContext) {
        guard deadline == nil else { return }
        deadline = context.eventLoop.scheduleTask(in: messageTimeout) { [weak self] in
            guard let self, !self.closed else { return }
            self.closed = true
            context.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closed else { return }
        var incoming = unwrapInboundIn(data)
        if buffer == nil { buffer = incoming } else { buffer!.writeBuffer(&incoming) }
        if let expect = proxy, !settleProxy(context, expect) { return }
        while let b = buffer, let length = b.getInteger(at: b.readerIndex, as: UInt16.self),
            b.readableBytes >= 2 + Int(length)
        {
            buffer!.moveReaderIndex(forwardBy: 2)
            pending.append(buffer!.readBytes(length: Int(length))!)
        }
        if buffer!.readableBytes == 0 {
            buffer = nil
            deadline?.cancel()
            deadline = nil
        } else {
            buffer!.discardReadBytes()
            armDeadline(context)
        }
        drain(context)
    }

    /// Transfer messages built per batch, off the event loop.
    static let transferBatch = 4
    /// A batch of the transfer is being built.
    var building = false

    /// Answers what is pending while the client takes the answers; reads more only when all are
    /// answered. A transfer in progress goes first: nothing after it is answered until it is done.
    func drain(_ context: ChannelHandlerContext) {
        var wrote = false
        while context.channel.isWritable && !closed && transfer == nil {
            guard let query = pending.popFirst() else { break }
            answer(context, query)
            wrote = true
        }
        if wrote { context.flush() }
        if transfer != nil { pump(context) }
        let idle = pending.isEmpty && transfer == nil
        // The whole-message deadline runs only while reading: a message half read when reading
        // stopped (answers backing up behind a client that pipelines) waits for the client to take
        // its answers, which the write timeout bounds; it gets a fresh deadline once reading resumes.
        if idle {
            if buffer != nil { armDeadline(context) }
        } else {
            deadline?.cancel()
            deadline = nil
        }
        context.channel.setOption(.autoRead, value: idle).whenFailure { _ in }
    }

    /// The next batch of the transfer, built on a worker thread (a large zone's messages take time
    /// to build, which must not stall the other connections of this event loop) and written back
    /// here; the next batch only once the client has taken enough (`isWritable`).
    func pump(_ context: ChannelHandlerContext) {
        guard let stream = transfer, !building, !closed, context.channel.isWritable else { return }
        building = true
        let loop = context.eventLoop
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        let start = stream
        DispatchQueue.global(qos: .utility).async {
            var stream = start
            var batch: [[UInt8]] = []
            var done = false
            while batch.count < Self.transferBatch {
                guard let m = stream.next() else {
                    done = true
                    break
                }
                batch.append(m)
            }
            let next = stream
            loop.execute {
                let (handler, context) = bound.value
                handler.building = false
                guard !handler.closed else { return }  // channelInactive released the slot
                for m in batch { handler.write(context, m[...]) }
                context.flush()
                if done {
                    handler.transfer = nil
                    handler.server.endTransfer()
                    handler.drain(context)
                } else {
                    handler.transfer = next
                    handler.pump(context)
                }
            }
        }
    }

    func answer(_ context: ChannelHandlerContext, _ bytes: [UInt8]) {
        let snapshot = server.store.current
        var transferQuery: Query? = nil
        bytes.withUnsafeBytes { packet in
            if case .query(let q) = QueryParser.parse(packet), q.qtype == RRType.axfr || q.qtype == RRType.ixfr {
                transferQuery = q
            }
        }
        if let q = transferQuery {
            startTransfer(context, bytes, q, snapshot)
            return
        }
        let n = bytes.withUnsafeBytes { packet in
            scratch.withUnsafeMutableBytes { out in
                snapshot.engine.respond(
                    to: packet, into: out.baseAddress!, capacity: out.count, transport: .tcp,
                    client: client)
            }
        }
        if n > 0 {
            write(context, scratch[0..<n])
        } else {
            // Nothing to answer (shorter than a header, a response, an empty frame): no real
            // client sends that, and answering nothing must not keep a connection alive.
            closed = true
            context.close(promise: nil)
        }
    }

    /// A transfer: streamed from the next `drain` on, or refused with one message.
    func startTransfer(_ context: ChannelHandlerContext, _ bytes: [UInt8], _ q: Query, _ snapshot: Snapshot) {
        let outcome = bytes.withUnsafeBytes {
            ZoneTransfer.respond(to: $0, query: q, snapshot: snapshot, client: client)
        }
        var rcode = Rcode.refused
        switch outcome {
        case .stream(let stream):
            if server.beginTransfer(limit: snapshot.listener.transferConcurrency) {
                transfer = stream
                return
            }
            server.logger.warning(
                "transfer from \(IPAddress.format(client.bytes)) refused: \(snapshot.listener.transferConcurrency) transfers already under way"
            )
        case .refuse(let r):
            rcode = r
        }
        let n = bytes.withUnsafeBytes { packet in
            scratch.withUnsafeMutableBytes { out in
                snapshot.engine.errorResponse(
                    packet, q, rcode: rcode, withQuestion: true, into: out.baseAddress!,
                    capacity: 512, transport: .tcp, client: client)
            }
        }
        if n > 0 { write(context, scratch[0..<n]) }
    }

    func write(_ context: ChannelHandlerContext, _ bytes: ArraySlice<UInt8>) {
        var out = context.channel.allocator.buffer(capacity: bytes.count + 2)
        out.writeInteger(UInt16(bytes.count))
        out.writeBytes(bytes)
        context.write(wrapOutboundOut(out), promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { drain(context) }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        deadline?.cancel()
        if transfer != nil {
            transfer = nil
            server.endTransfer()
        }
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent {
            let answering = !pending.isEmpty || transfer != nil
            switch idle {
            case .read where !answering:
                context.close(promise: nil)  // RFC 7766 §6.2.3: the server closes idle connections
            case .write where answering:
                context.close(promise: nil)  // answers not taken for the whole timeout: a client that does not read
            default:
                break
            }
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// On a listening channel: says why an accept failed (out of descriptors, out of memory), at most a
/// line every 10 s, instead of NIO's silence; the listener goes on accepting.
final class AcceptFailureLogger: ChannelInboundHandler {
    typealias InboundIn = Channel
    let throttle: LogThrottle
    let address: String

    init(throttle: LogThrottle, address: String) {
        self.throttle = throttle
        self.address = address
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        var reason = "\(error)"
        if let e = error as? IOError { reason = "\(e.description) (errno \(e.errnoCode))" }
        throttle.warn(.tcpAccept, peer: address, "TCP accept on \(address) failed: \(reason)")
        context.fireErrorCaught(error)
    }
}
