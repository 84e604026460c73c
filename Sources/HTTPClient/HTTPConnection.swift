package import Foundation
import NIOCore
import NIOEmbedded
package import NIOHTTP1
package import Settings

/// A blocking HTTP/1.1 exchange over one connection, every step under a deadline: what
/// `lodestar ctl` and the etcd client use (each on threads of their own, never on an event loop
/// or the query path). Requests are encoded and responses decoded by NIOHTTP1 (the
/// `HTTPRequestEncoder` and `HTTPResponseDecoder` the prober uses, on an `EmbeddedChannel`);
/// the octets move through a `ByteTransport`: a socket, TLS, or a fuzzing harness's feed.
package final class HTTPConnection {
    package struct Failure: Error, CustomStringConvertible {
        package enum Code: Sendable, Equatable {
            /// The connection could not be made (the errno: ECONNREFUSED, EACCES, ENOENT, …).
            case connect(errno: Int32)
            /// The deadline passed.
            case timeout
            /// The peer closed, or the connection failed, before the response was whole.
            case closed
            /// Not HTTP as RFC 9112 has it, or over a limit.
            case malformed
            /// A local failure (no socket, a bad address or path).
            case local
        }

        package var code: Code
        package var description: String
        package init(_ d: String, code: Code = .malformed) {
            description = d
            self.code = code
        }
    }

    package struct Response {
        package var status: Int
        package var headers: HTTPHeaders
        package var body: [UInt8]
        package var text: String { String(decoding: body, as: UTF8.self) }
    }

    /// Header octets a response may have (NIOHTTP1 refuses more).
    static let headerLimit = 64 << 10

    let transport: any ByteTransport
    package let endpoint: String
    /// The Host header: the endpoint, or `localhost` over a Unix socket.
    let hostHeader: String
    let codec: EmbeddedChannel
    /// The peer closed its side: the decoder has been told.
    var ended = false

    /// Connects to `host:port` (an IPv4 or IPv6 address) before `deadline`; through TLS when
    /// `tls` is given.
    package convenience init(host: String, port: Int, deadline: Date, tls: TLSSettings? = nil) throws {
        let endpoint = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        let transport: any ByteTransport
        if let tls {
            transport = try TLSTransport(host: host, port: port, settings: tls, deadline: deadline)
        } else {
            transport = try SocketTransport(host: host, port: port, deadline: deadline)
        }
        self.init(transport: transport, endpoint: endpoint, hostHeader: endpoint)
    }

    /// Connects to the Unix stream socket at `path` before `deadline` (the control socket).
    package convenience init(unixPath path: String, deadline: Date) throws {
        self.init(
            transport: try SocketTransport(unixPath: path, deadline: deadline), endpoint: path, hostHeader: "localhost")
    }

    /// Over a transport of the caller's (the fuzzing harness feeds octets through one).
    package init(transport: any ByteTransport, endpoint: String, hostHeader: String = "localhost") {
        self.transport = transport
        self.endpoint = endpoint
        self.hostHeader = hostHeader
        codec = EmbeddedChannel()
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderFieldSize = Self.headerLimit
        limits.maxHeaderListSize = Self.headerLimit
        limits.maxHeaderFieldCount = 256
        // Cannot fail: the handlers are added to a fresh pipeline on the caller's thread.
        try! codec.pipeline.syncOperations.addHandlers([
            HTTPRequestEncoder(),
            ByteToMessageHandler(
                HTTPResponseDecoder(
                    leftOverBytesStrategy: .dropBytes, informationalResponseStrategy: .drop,
                    limitConfiguration: limits))
        ])
    }

    deinit { _ = try? codec.finish(acceptAlreadyClosed: true) }

    /// Unblocks a read in progress on another thread (it fails at once).
    package func abort() { transport.abort() }

    /// Sends one request; `headers` as "Name: value".
    package func send(_ method: String, _ path: String, headers: [String] = [], body: [UInt8]? = nil, deadline: Date)
        throws
    {
        var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: path)
        head.headers.add(name: "Host", value: hostHeader)
        head.headers.add(name: "User-Agent", value: "lodestar")
        for h in headers {
            guard let colon = h.firstIndex(of: ":") else { continue }
            head.headers.add(
                name: String(h[..<colon]), value: h[h.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        if let body { head.headers.replaceOrAdd(name: "Content-Length", value: "\(body.count)") }
        var bytes: [UInt8] = []
        do {
            try codec.writeOutbound(HTTPClientRequestPart.head(head))
            if let body { try codec.writeOutbound(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body)))) }
            try codec.writeOutbound(HTTPClientRequestPart.end(nil))
            while let b = try codec.readOutbound(as: ByteBuffer.self) { bytes += b.readableBytesView }
        } catch {
            throw Failure("\(endpoint): cannot encode the request: \(error)", code: .local)
        }
        try transport.send(bytes, deadline: deadline)
    }

    /// The next part of the response, reading from the peer as needed; nil once the stream ended
    /// with nothing more to decode.
    func nextPart(deadline: Date) throws -> HTTPClientResponsePart? {
        while true {
            do {
                if let part = try codec.readInbound(as: HTTPClientResponsePart.self) { return part }
                if ended { return nil }
                let got = try transport.receive(deadline: deadline)
                if got.isEmpty {
                    // The end of the stream ends a body read to the end (no length, not chunked).
                    ended = true
                    codec.pipeline.fireChannelInactive()
                } else {
                    try codec.writeInbound(ByteBuffer(bytes: got))
                }
            } catch let e as HTTPParserError {
                throw Failure("\(endpoint) sent a malformed HTTP response: \(Self.describe(e))")
            } catch let e as NIOHTTPDecoderError {
                throw Failure("\(endpoint) sent a malformed HTTP response: \(e)")
            }
        }
    }

    static func describe(_ e: HTTPParserError) -> String {
        switch e {
        case .invalidContentLength: return "a bad Content-Length"
        case .unexpectedContentLength: return "a Content-Length with Transfer-Encoding, or two that disagree"
        case .invalidChunkSize: return "a bad chunk size"
        case .headerOverflow: return "headers over \(headerLimit >> 10) KiB"
        default: return "\(e)"
        }
    }

    /// The status line and headers of the response.
    package func readHead(deadline: Date) throws -> (status: Int, headers: HTTPHeaders) {
        while true {
            switch try nextPart(deadline: deadline) {
            case .head(let h)?: return (Int(h.status.code), h.headers)
            case nil: throw Failure("\(endpoint) closed the connection before a response", code: .closed)
            case .body?, .end?: continue
            }
        }
    }

    /// A whole response (Content-Length, chunked, or to the end), at most `limit` octets of body.
    package func readResponse(deadline: Date, limit: Int = 16 << 20) throws -> Response {
        let (status, headers) = try readHead(deadline: deadline)
        var body: [UInt8] = []
        while let piece = try readBody(deadline: deadline) {
            guard body.count + piece.count <= limit else { throw Failure("\(endpoint): response over \(limit) octets") }
            body += piece
        }
        return Response(status: status, headers: headers, body: body)
    }

    /// The next piece of the response's body (a stream read as it comes, like a watch); nil at its end.
    package func readBody(deadline: Date) throws -> [UInt8]? {
        while true {
            switch try nextPart(deadline: deadline) {
            case .body(let b)?: if b.readableBytes > 0 { return Array(b.readableBytesView) }
            case .end?: return nil
            case nil: throw Failure("\(endpoint) closed the connection in the middle of the response", code: .closed)
            case .head?: throw Failure("\(endpoint) sent a second response")
            }
        }
    }
}
