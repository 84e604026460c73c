import Foundation
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import DNSWire

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
/// With a token file configured, every request needs `Authorization: Bearer TOKEN`.
package final class AdminServer: @unchecked Sendable {
    unowned let server: any AdminControl
    let token: String?
    let logger: Logger
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    var channel: Channel? = nil
    let shares = ShareWindow()
    var timer: RepeatedTask? = nil

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

    /// Binds `address` and starts serving; a non-loopback address needs a token.
    package func start(_ address: ListenAddress) throws {
        guard token != nil || address.isLoopback else {
            throw AdminError("admin listen address \(address) is not loopback: configure admin.token-file to expose it")
        }
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [self] channel in
                channel.pipeline.configureHTTPServerPipeline(withErrorHandling: true).flatMap {
                    channel.pipeline.addHandler(AdminHandler(admin: self))
                }
            }
        do {
            channel = try bootstrap.bind(host: address.host, port: address.port).wait()
        } catch {
            throw AdminError("cannot listen on admin address \(address): \(error)")
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

    struct Response {
        var status: HTTPResponseStatus
        var body: String
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

    init(admin: AdminServer) { self.admin = admin }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h):
            head = h
            body = []
        case .body(var buf):
            if body.count < 65536 { body += buf.readBytes(length: min(buf.readableBytes, 65536 - body.count)) ?? [] }
        case .end:
            guard let head else { return }
            let r = admin.handle(method: head.method, uri: head.uri, headers: head.headers, body: body)
            var headers = HTTPHeaders()
            headers.add(name: "content-type", value: r.contentType)
            headers.add(name: "content-length", value: "\(r.body.utf8.count)")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: r.status, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: r.body)))), promise: nil)
            let keepAlive = head.isKeepAlive
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
                if !keepAlive { context.close(promise: nil) }
            }
            self.head = nil
        }
    }
}
