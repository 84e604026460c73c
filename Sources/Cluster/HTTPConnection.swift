import Foundation
import Settings
import Glibc

/// A blocking HTTP/1.1 exchange over one TCP connection, every step under a deadline: what
/// `lodestar ctl` and the etcd client use (each on threads of their own, never on an event loop
/// or the query path). Plain HTTP only.
package final class HTTPConnection {
    package struct Failure: Error, CustomStringConvertible {
        package var description: String
        package init(_ d: String) { description = d }
    }

    package struct Response {
        package var status: Int
        package var headers: [String: String]
        package var body: [UInt8]
        package var text: String { String(decoding: body, as: UTF8.self) }
    }

    let transport: any ByteTransport
    package let endpoint: String
    /// The Host header: the endpoint, or `localhost` over a Unix socket.
    var hostHeader: String
    var buffer: [UInt8] = []

    /// Connects to `host:port` (an IPv4 or IPv6 address) before `deadline`; through TLS when
    /// `tls` is given.
    package init(host: String, port: Int, deadline: Date, tls: TLSSettings? = nil) throws {
        endpoint = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        hostHeader = endpoint
        if let tls {
            transport = try TLSTransport(host: host, port: port, settings: tls, deadline: deadline)
        } else {
            transport = try SocketTransport(host: host, port: port, deadline: deadline)
        }
    }

    /// Over a transport of the caller's (the fuzzing harness feeds octets through one).
    package init(transport: any ByteTransport, endpoint: String) {
        self.transport = transport
        self.endpoint = endpoint
        hostHeader = "localhost"
    }

    /// Connects to the Unix stream socket at `path` before `deadline` (the control socket).
    package init(unixPath path: String, deadline: Date) throws {
        endpoint = path
        hostHeader = "localhost"
        transport = try SocketTransport(unixPath: path, deadline: deadline)
    }

    /// Unblocks a read in progress on another thread (it fails at once).
    package func abort() { transport.abort() }

    /// Sends one request; `headers` as "Name: value".
    package func send(_ method: String, _ path: String, headers: [String] = [], body: [UInt8]? = nil, deadline: Date) throws {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(hostHeader)\r\nUser-Agent: lodestar\r\n"
        for h in headers { head += h + "\r\n" }
        if let body { head += "Content-Length: \(body.count)\r\n" }
        var bytes = Array((head + "\r\n").utf8)
        if let body { bytes += body }
        try transport.send(bytes, deadline: deadline)
    }

    /// The status line and headers of the response.
    package func readHead(deadline: Date) throws -> (status: Int, headers: [String: String]) {
        while true {
            if let end = find([13, 10, 13, 10]) {
                let text = String(decoding: buffer[0..<end], as: UTF8.self)
                buffer.removeFirst(end + 4)
                var lines = text.split(separator: "\r\n").map(String.init)
                guard !lines.isEmpty, let status = lines.removeFirst().split(separator: " ").dropFirst().first.flatMap({ Int($0) }) else {
                    throw Failure("\(endpoint) sent no HTTP status line")
                }
                var headers: [String: String] = [:]
                for l in lines {
                    guard let c = l.firstIndex(of: ":") else { continue }
                    let name = l[..<c].lowercased()
                    let value = l[l.index(after: c)...].trimmingCharacters(in: .whitespaces)
                    // Two framings that disagree: which body is meant cannot be known.
                    if name == "content-length" || name == "transfer-encoding", let old = headers[name], old != value {
                        throw Failure("\(endpoint) sent two \(name) headers (\(old.prefix(20)), \(value.prefix(20)))")
                    }
                    headers[name] = value
                }
                return (status, headers)
            }
            guard buffer.count < 65536 else { throw Failure("\(endpoint): response headers over 64 KiB") }
            try fill(deadline)
        }
    }

    /// A whole response (Content-Length, chunked, or to the end), at most `limit` octets of body.
    package func readResponse(deadline: Date, limit: Int = 16 << 20) throws -> Response {
        let (status, headers) = try readHead(deadline: deadline)
        var body: [UInt8] = []
        if headers["transfer-encoding"]?.lowercased().contains("chunked") == true {
            while let chunk = try readChunk(deadline: deadline) {
                body += chunk
                guard body.count <= limit else { throw Failure("\(endpoint): response over \(limit) octets") }
            }
        } else if let text = headers["content-length"] {
            // Digits only: Int() takes "-1" and "+1", and a negative length trapped the process.
            guard !text.isEmpty, text.utf8.count <= 18, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let length = Int(text) else {
                throw Failure("\(endpoint) sent a bad Content-Length: \(text.prefix(40))")
            }
            guard length <= limit else { throw Failure("\(endpoint): response over \(limit) octets") }
            while buffer.count < length { try fill(deadline) }
            body = Array(buffer[0..<length])
            buffer.removeFirst(length)
        } else {
            while true {
                do { try fill(deadline) } catch is EndOfStream { break }
                guard buffer.count <= limit else { throw Failure("\(endpoint): response over \(limit) octets") }
            }
            body = buffer
            buffer = []
        }
        return Response(status: status, headers: headers, body: body)
    }

    /// The next chunk of a chunked body; nil at its end.
    package func readChunk(deadline: Date) throws -> [UInt8]? {
        var lineEnd: Int
        while true {
            if let e = find([13, 10]) { lineEnd = e; break }
            guard buffer.count < 1024 else { throw Failure("\(endpoint): bad chunk header") }
            try fill(deadline)
        }
        let sizeText = (String(decoding: buffer[0..<lineEnd], as: UTF8.self).split(separator: ";").first ?? "")
            .trimmingCharacters(in: .whitespaces)
        guard !sizeText.isEmpty, sizeText.utf8.count <= 8, sizeText.utf8.allSatisfy({ $0 < 0x80 && Character(Unicode.Scalar($0)).isHexDigit }),
              let size = Int(sizeText, radix: 16), size <= 16 << 20 else {
            throw Failure("\(endpoint): bad chunk size")
        }
        buffer.removeFirst(lineEnd + 2)
        while buffer.count < size + 2 { try fill(deadline) }
        let chunk = Array(buffer[0..<size])
        buffer.removeFirst(size + 2)
        return size == 0 ? nil : chunk
    }

    struct EndOfStream: Error, CustomStringConvertible {
        var description: String { "the connection was closed" }
    }

    func fill(_ deadline: Date) throws {
        let got = try transport.receive(deadline: deadline)
        if got.isEmpty { throw EndOfStream() }
        buffer += got
    }

    func find(_ needle: [UInt8]) -> Int? {
        guard buffer.count >= needle.count else { return nil }
        for i in 0...(buffer.count - needle.count) where buffer[i] == needle[0] {
            if (1..<needle.count).allSatisfy({ buffer[i + $0] == needle[$0] }) { return i }
        }
        return nil
    }
}

/// What `HTTPConnection` reads and writes through.
package protocol ByteTransport: AnyObject {
    func send(_ bytes: [UInt8], deadline: Date) throws
    /// Some octets; empty at the end of the stream.
    func receive(deadline: Date) throws -> [UInt8]
    func abort()
}

/// A non-blocking TCP socket driven with poll(2) under deadlines.
final class SocketTransport: ByteTransport {
    let fd: Int32
    let endpoint: String

    init(host: String, port: Int, deadline: Date) throws {
        endpoint = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        let v6 = host.contains(":")
        let fd = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw HTTPConnection.Failure("socket: \(String(cString: strerror(errno)))") }
        self.fd = fd
        var r: Int32
        if v6 {
            var sa = sockaddr_in6()
            sa.sin6_family = sa_family_t(AF_INET6)
            sa.sin6_port = in_port_t(UInt16(port).bigEndian)
            guard inet_pton(AF_INET6, host, &sa.sin6_addr) == 1 else { close(fd); throw HTTPConnection.Failure("\(host) is not an IP address") }
            r = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        } else {
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            sa.sin_port = in_port_t(UInt16(port).bigEndian)
            guard inet_pton(AF_INET, host, &sa.sin_addr) == 1 else { close(fd); throw HTTPConnection.Failure("\(host) is not an IP address") }
            r = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        }
        if r < 0 && errno != EINPROGRESS {
            let e = errno
            close(fd)
            throw Self.connectFailure(e, endpoint)
        }
        do { try wait(POLLOUT, deadline) } catch { close(fd); throw error }
        var err: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
        if err != 0 {
            close(fd)
            throw Self.connectFailure(err, endpoint)
        }
    }

    /// A Unix stream socket at `path`.
    init(unixPath path: String, deadline: Date) throws {
        endpoint = path
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw HTTPConnection.Failure("socket: \(String(cString: strerror(errno)))") }
        self.fd = fd
        var sa = sockaddr_un()
        sa.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: sa.sun_path) else {
            close(fd)
            throw HTTPConnection.Failure("\(path): the socket path is too long")
        }
        withUnsafeMutableBytes(of: &sa.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        let r = withUnsafePointer(to: &sa) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if r < 0 && errno != EINPROGRESS && errno != EAGAIN {
            let e = errno
            close(fd)
            throw Self.connectFailure(e, path)
        }
        do { try wait(POLLOUT, deadline) } catch { close(fd); throw error }
    }

    deinit { close(fd) }

    static func connectFailure(_ e: Int32, _ endpoint: String) -> HTTPConnection.Failure {
        HTTPConnection.Failure("cannot connect to \(endpoint): \(String(cString: strerror(e)))")
    }

    func abort() { shutdown(fd, Int32(SHUT_RDWR)) }

    func send(_ bytes: [UInt8], deadline: Date) throws {
        var off = 0
        while off < bytes.count {
            try wait(POLLOUT, deadline)
            let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 && (errno == EAGAIN || errno == EINTR) { continue }
            guard n > 0 else { throw HTTPConnection.Failure("\(endpoint) closed the connection: \(String(cString: strerror(errno)))") }
            off += n
        }
    }

    func receive(deadline: Date) throws -> [UInt8] {
        var tmp = [UInt8](repeating: 0, count: 65536)
        while true {
            try wait(POLLIN, deadline)
            let n = recv(fd, &tmp, tmp.count, 0)
            if n < 0 && (errno == EAGAIN || errno == EINTR) { continue }
            if n == 0 { return [] }
            guard n > 0 else { throw HTTPConnection.Failure("\(endpoint): \(String(cString: strerror(errno)))") }
            return Array(tmp[0..<n])
        }
    }

    func wait(_ events: Int32, _ deadline: Date) throws {
        while true {
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { throw HTTPConnection.Failure("\(endpoint) did not answer in time") }
            var p = pollfd(fd: fd, events: Int16(events), revents: 0)
            let r = poll(&p, 1, Int32(min(left, 1) * 1000) + 1)
            if r > 0 {
                if p.revents & Int16(POLLNVAL) != 0 { throw HTTPConnection.Failure("\(endpoint): connection closed") }
                return
            }
            if r < 0 && errno != EINTR { throw HTTPConnection.Failure("poll: \(String(cString: strerror(errno)))") }
        }
    }
}
