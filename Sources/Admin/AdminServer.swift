import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import CLodestarSys
import DNSWire
import Glibc

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
/// With a token file configured, every request but `/health` and `/ready` needs
/// `Authorization: Bearer TOKEN`.
///
/// Against a browser on the operator's machine and other local users: a POST needs
/// `Content-Type: application/json` (a cross-site form cannot send it without a CORS preflight,
/// which is never granted); a `Host` that names anything but an address or `localhost` is refused
/// (DNS rebinding), as is an `Origin` other than this API's own; the token is compared in constant
/// time. Bodies over 64 KiB get 413. POSTs (a reload takes seconds with GeoLite2) run off the
/// event loop, so `/metrics` keeps answering. At most `maxConnections` at once, each closed after
/// `idleSeconds` without a request.
package final class AdminServer: @unchecked Sendable {
    static let maxConnections = 64
    static let idleSeconds: Int64 = 30
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
    let connections = Atomic<Int>(0)
    /// POSTs in arrival order, off the event loop.
    let work = DispatchQueue(label: "lodestar.admin.work")

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
        guard fd >= 0 else { throw AdminError("cannot listen on admin address \(address): \(String(cString: strerror(-fd)))") }
        listening = fd
    }

    /// Serves on the socket `open` bound.
    package func start() throws {
        let bootstrap = ServerBootstrap(group: group)
            .childChannelInitializer { [self] channel in
                guard connections.wrappingAdd(1, ordering: .relaxed).newValue <= Self.maxConnections else {
                    connections.subtract(1, ordering: .relaxed)
                    return channel.close()
                }
                channel.closeFuture.whenComplete { _ in self.connections.subtract(1, ordering: .relaxed) }
                return channel.pipeline.configureHTTPServerPipeline(withErrorHandling: true).flatMap {
                    channel.pipeline.addHandlers([IdleStateHandler(allTimeout: .seconds(Self.idleSeconds)), AdminHandler(admin: self)])
                }
            }
        do {
            channel = try bootstrap.withBoundSocket(listening).wait()
        } catch {
            throw AdminError("cannot serve the admin API on \(self.address.map { "\($0)" } ?? "?"): \(error)")
        }
        // Sample answer counters every 5 s: "share of recent answers" covers the last minute.
        timer = group.next().scheduleRepeatedTask(initialDelay: .zero, delay: .seconds(5)) { [self] _ in
            shares.sample(server.store.current.steering)
        }
    }

    package func stop() {
        timer?.cancel()
        try? channel?.close().wait()
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
    var head: HTTPRequestHead? = nil
    var body: [UInt8] = []
    var tooLarge = false

    init(admin: AdminServer) { self.admin = admin }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            body = []
            tooLarge = false
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
            if tooLarge {
                respond(context, head, AdminServer.error(.payloadTooLarge, "the body is over \(AdminServer.maxBody) octets"))
                return
            }
            if let refusal = admin.refusal(head) {
                respond(context, head, refusal)
                return
            }
            let body = self.body
            guard head.method == .POST else {
                respond(context, head, admin.handle(method: head.method, uri: head.uri, headers: head.headers, body: body))
                return
            }
            // A change (a reload above all) is made off the event loop, in arrival order.
            let loop = context.eventLoop
            let bound = NIOLoopBound((self, context), eventLoop: loop)
            let admin = self.admin
            admin.work.async {
                let r = admin.handle(method: head.method, uri: head.uri, headers: head.headers, body: body)
                loop.execute { bound.value.0.respond(bound.value.1, head, r) }
            }
        }
    }

    func respond(_ context: ChannelHandlerContext, _ head: HTTPRequestHead, _ r: AdminServer.Response) {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: r.contentType)
        headers.add(name: "content-length", value: "\(r.body.utf8.count)")
        headers.add(name: "cache-control", value: "no-store")
        headers.add(name: "x-content-type-options", value: "nosniff")
        let keepAlive = head.isKeepAlive && r.status.code < 400
        if !keepAlive { headers.add(name: "connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: r.status, headers: headers))), promise: nil)
        if head.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: r.body)))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
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
