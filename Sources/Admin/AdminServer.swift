import CLodestarSys
package import DNSWire
import Engine
import Foundation
import Glibc
package import Logging
import NIOCore
package import NIOHTTP1
import NIOPosix

/// The admin API and Prometheus metrics: JSON over HTTP/1.1 on a loopback address.
///
/// - `GET /v1/state`: every region, pool and endpoint: health and why, configured and effective
///   weight, slow-start progress, share of recent answers; the overrides in force.
/// - `POST /v1/{regions|pools|endpoints}/NAME` with `{"state": "up"|"down"|"drain"|"auto", "weight": N|null}`:
///   an override (persisted in the state file; `auto` and `null` clear it).
/// - `POST /v1/health/NAME` with `{"state": "up"|"down"|"auto", "reason": "…", "ttl": seconds}`: external
///   health input for an endpoint checked elsewhere; ignored after `ttl` (default `external-stale-after`).
/// - `GET /v1/anycast`: every anycast prefix: desired, BIRD's and exported state, reason, alarm.
/// - `POST /v1/anycast/PROTOCOL` with `{"state": "withdraw"|"auto"}`: withdraw for maintenance.
/// - `POST /v1/reload`: as SIGHUP; answers with the outcome.
/// - `GET /v1/explain?name=N&type=T&client=IP[/LEN]`: as `lodestar explain`, with live health.
/// - `GET /metrics`: Prometheus text.
/// - `GET /health`: 200 while the process answers; `GET /ready`: 200 when it should take traffic,
///   503 with the reason before the first round of checks is done and while stopping.
/// Who may do what, as knotc's control socket decides it:
///
/// - the control socket (`admin.socket`, a Unix socket of mode 0660 owned by the user and group the
///   server runs as): everything; its file permissions decide who may connect (root and the
///   `lodestar` group). `lodestar ctl` talks through it.
/// - the TCP listener (`admin.listen`): `/health`, `/ready` and `/metrics` for anyone who reaches
///   it; with `admin.token-file`, everything else needs `Authorization: Bearer TOKEN`; without
///   one, the other reads are open and no change (POST) is taken: a local account cannot drain a
///   region or reload.
///
/// Against a browser on the operator's machine and other local users: a POST needs
/// `Content-Type: application/json` (a cross-site form cannot send it without a CORS preflight,
/// which is never granted); a `Host` that names anything but an address or `localhost` is refused
/// (DNS rebinding), as is an `Origin` other than this API's own; the token is compared in constant
/// time. Bodies over 64 KiB get 413. POSTs (a reload takes seconds with GeoLite2) run off the
/// event loop, so `/metrics` keeps answering.
///
/// Connections over TCP (`AdminSlots`): at most `maxConnections` at once and `maxPerClient` from one
/// address; a request must arrive whole within `requestSeconds` of its first octet (or of the
/// connection); a connection idle `idleSeconds` is closed, and when all are taken the one idle the
/// longest makes room. `reservedProbes` more are kept for `/health`, `/ready` and `/metrics` alone,
/// so that idle or slow connections never shut out the orchestrator's probes.
package final class AdminServer: @unchecked Sendable {
    static let maxConnections = 64
    static let maxPerClient = 8
    static let reservedProbes = 8
    static let idleSeconds: Int64 = 30
    static let requestSeconds: Int64 = 5
    static let maxBody = 65536
    unowned let server: any AdminControl
    let token: String?
    let logger: Logger
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    var channel: Channel? = nil
    let shares = ShareWindow()
    var timer: RepeatedTask? = nil
    /// The address it listens on, for the Host and Origin checks.
    var address: ListenAddress? = nil
    /// TCP connections and their state; touched on the event loop only.
    let slots = AdminSlots()
    /// The control socket (`admin.socket`): its path, and the descriptor `openControl` bound.
    var controlPath: String? = nil
    var controlSocket: Int32 = -1
    var controlChannel: Channel? = nil
    /// POSTs in arrival order, off the event loop.
    let work = DispatchQueue(label: "lodestar.admin.work")
    /// GETs other than /health and /ready, off the event loop.
    let reads = DispatchQueue(label: "lodestar.admin.reads")
    /// Answered on the event loop itself.
    static let loopPaths: Set<String> = ["/health", "/ready"]
    /// Unread answers a connection may hold before it is closed.
    static let writeBuffer = WriteBufferWaterMark(low: 64 << 10, high: 256 << 10)

    package init(server: any AdminControl, token: String?, logger: Logger) {
        self.server = server
        self.token = token
        self.logger = logger
    }

    /// The bearer token in `path` (surrounding white space removed).
    package static func readToken(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path),
            let t = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines), !t.isEmpty
        else { throw AdminError("\(path): cannot read the admin token (an empty file is not a token)") }
        return t
    }

    /// The listening socket `open` made, served by `start`.
    var listening: Int32 = -1

    /// Binds `address` (before privileges are dropped); a non-loopback address needs a token.
    package func open(_ address: ListenAddress) throws {
        guard token != nil || address.isLoopback else {
            throw AdminError("admin listen address \(address) is not loopback: configure admin.token-file to expose it")
        }
        self.address = address
        let fd: Int32 = address.withSockaddr { sa, len in lodestar_tcp_listen(sa, len, 64) }
        guard fd >= 0 else {
            throw AdminError("cannot listen on admin address \(address): \(String(cString: strerror(-fd)))")
        }
        listening = fd
    }

    /// Binds the control socket at `path` (before privileges are dropped), mode 0660, owned by
    /// the user and group the server will run as (-1: as it is).
    package func openControl(_ path: String, uid: Int32, gid: Int32) throws {
        let fd = lodestar_unix_listen(path, 0o660, uid, gid, 16)
        guard fd >= 0 else {
            let why =
                fd == -EEXIST
                ? "a file that is not a socket is there"
                : fd == -EADDRINUSE ? "another lodestar answers on it" : String(cString: strerror(-fd))
            throw AdminError("cannot open the control socket \(path): \(why)")
        }
        controlPath = path
        controlSocket = fd
    }

    /// Serves on the sockets `open` and `openControl` bound.
    package func start() throws {
        if listening >= 0 {
            channel = try serve(listening, "the admin API on \(address.map { "\($0)" } ?? "?")") { [self] channel in
                let client = channel.remoteAddress?.ipAddress ?? "?"
                guard let slot = slots.admit(client) else {
                    logger.warning(
                        "admin: connection from \(client) refused: \(Self.maxConnections) connections (\(Self.maxPerClient) per client) busy"
                    )
                    return nil
                }
                if let evicted = slot.evicted { evicted.close(promise: nil) }
                slot.conn.channel = channel
                channel.closeFuture.whenComplete { _ in self.slots.release(slot.conn) }
                return slot.conn
            }
        }
        if controlSocket >= 0 {
            controlChannel = try serve(controlSocket, "the control socket \(controlPath ?? "?")") { _ in
                AdminSlots.Conn(client: "control socket", control: true)
            }
        }
        // Sample answer counters every 5 s: "share of recent answers" covers the last minute.
        timer = group.next().scheduleRepeatedTask(initialDelay: .zero, delay: .seconds(5)) { [self] _ in
            shares.sample(server.store.current.steering)
        }
    }

    /// Serves HTTP on a bound socket; `admit` gives each connection its slot, or nil to close it.
    func serve(_ fd: Int32, _ what: String, admit: @escaping @Sendable (Channel) -> AdminSlots.Conn?) throws -> Channel
    {
        let bootstrap = ServerBootstrap(group: group)
            .childChannelOption(.writeBufferWaterMark, value: Self.writeBuffer)
            .childChannelInitializer { [self] channel in
                guard let conn = admit(channel) else { return channel.close() }
                return channel.pipeline.configureHTTPServerPipeline(withErrorHandling: true).flatMap {
                    channel.pipeline.addHandlers([
                        IdleStateHandler(allTimeout: .seconds(Self.idleSeconds)), AdminHandler(admin: self, conn: conn)
                    ])
                }
            }
        do {
            return try bootstrap.withBoundSocket(fd).wait()
        } catch {
            throw AdminError("cannot serve \(what): \(error)")
        }
    }

    package func stop() {
        timer?.cancel()
        try? channel?.close().wait()
        try? controlChannel?.close().wait()
        if let controlPath { unlink(controlPath) }
        try? group.syncShutdownGracefully()
    }

    package struct Response {
        package var status: HTTPResponseStatus
        package var body: String
        var contentType = "application/json"
    }

    static func json<T: Encodable>(_ value: T, status: HTTPResponseStatus = .ok) -> Response {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        let body = (try? enc.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return Response(status: status, body: body + "\n")
    }

    static func error(_ status: HTTPResponseStatus, _ message: String) -> Response {
        json(["error": message], status: status)
    }
}

final class AdminHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let admin: AdminServer
    /// The connection's slot: over TCP (counted, may be probe-only) or the control socket.
    let conn: AdminSlots.Conn
    var head: HTTPRequestHead? = nil
    var body: [UInt8] = []
    var tooLarge = false
    /// Closes the connection when a request started (or the first one) is not whole in time.
    var deadline: Scheduled<Void>? = nil

    init(admin: AdminServer, conn: AdminSlots.Conn) {
        self.admin = admin
        self.conn = conn
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if !conn.control { arm(context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
    }

    /// A probe-only slot gets 2 s; the others `requestSeconds`.
    func arm(_ context: ChannelHandlerContext) {
        deadline?.cancel()
        let seconds = conn.probeOnly ? 2 : AdminServer.requestSeconds
        deadline = context.eventLoop.scheduleTask(in: .seconds(seconds)) { context.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            body = []
            tooLarge = false
            conn.busy = true
            if !conn.control && deadline == nil { arm(context) }
        case .body(var buf):
            if body.count + buf.readableBytes > AdminServer.maxBody {
                tooLarge = true
                body = []
            } else if !tooLarge {
                body += buf.readBytes(length: buf.readableBytes) ?? []
            }
        case .end:
            guard let head else { return }
            self.head = nil
            deadline?.cancel()
            deadline = nil
            if conn.probeOnly && !AdminServer.probePaths.contains(head.uri) {
                respond(
                    context, head,
                    AdminServer.error(
                        .serviceUnavailable,
                        "every admin connection is taken: this one serves /health, /ready and /metrics only"))
                return
            }
            if tooLarge {
                respond(
                    context, head, AdminServer.error(.payloadTooLarge, "the body is over \(AdminServer.maxBody) octets")
                )
                return
            }
            if let refusal = admin.refusal(head, control: conn.control) {
                respond(context, head, refusal)
                return
            }
            let body = self.body
            // /health and /ready on the event loop, at once: nothing else may delay them.
            if head.method != .POST && AdminServer.loopPaths.contains(head.uri) {
                respond(
                    context, head, admin.handle(method: head.method, uri: head.uri, headers: head.headers, body: body))
                return
            }
            // Everything else off the event loop: a change (a reload above all) in arrival order on
            // `work`; reads (/metrics renders every series) on `reads`, so that neither a reload
            // nor a client asking /metrics over and over holds up the probes. Each connection has
            // one request at a time in flight (NIO's pipelining handler holds the next), so these
            // queues hold at most one entry per connection.
            let loop = context.eventLoop
            let bound = NIOLoopBound((self, context), eventLoop: loop)
            let admin = self.admin
            (head.method == .POST ? admin.work : admin.reads).async {
                let r = admin.handle(method: head.method, uri: head.uri, headers: head.headers, body: body)
                loop.execute { bound.value.0.respond(bound.value.1, head, r) }
            }
        }
    }

    func respond(_ context: ChannelHandlerContext, _ head: HTTPRequestHead, _ r: AdminServer.Response) {
        // A client that does not read its answers (pipelining request after request) is closed
        // once a quarter MiB of them waits: its answers must not pile up in memory.
        guard context.channel.isWritable else {
            context.close(promise: nil)
            return
        }
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: r.contentType)
        headers.add(name: "content-length", value: "\(r.body.utf8.count)")
        headers.add(name: "cache-control", value: "no-store")
        headers.add(name: "x-content-type-options", value: "nosniff")
        let keepAlive = head.isKeepAlive && r.status.code < 400
        if !keepAlive { headers.add(name: "connection", value: "close") }
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: r.status, headers: headers))),
            promise: nil)
        if head.method != .HEAD {
            context.write(
                wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: r.body)))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { [conn] _ in
            conn.busy = false
            conn.idleSince = .now()
            if !keepAlive { context.close(promise: nil) }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}
