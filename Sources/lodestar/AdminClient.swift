import Foundation
import Glibc

/// A blocking HTTP/1.1 client for `lodestar ctl`: one request per connection, every step under a
/// deadline, errors that say what to check.
struct AdminClient {
    var host: String
    var port: Int
    var token: String?
    var timeout: Double = 10

    struct Reply {
        var status: Int
        var body: String
        var json: Any? { try? JSONSerialization.jsonObject(with: Data(body.utf8)) }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    var endpoint: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    func get(_ path: String) throws -> Reply { try request("GET", path, body: nil) }
    func post(_ path: String, _ object: [String: Any]) throws -> Reply {
        try request("POST", path, body: try JSONSerialization.data(withJSONObject: object))
    }

    func request(_ method: String, _ path: String, body: Data?) throws -> Reply {
        let deadline = Date().addingTimeInterval(timeout)
        let fd = try connect(deadline)
        defer { close(fd) }
        var head = "\(method) \(path) HTTP/1.1\r\nHost: \(endpoint)\r\nConnection: close\r\nUser-Agent: lodestar-ctl\r\n"
        if let token { head += "Authorization: Bearer \(token)\r\n" }
        if let body { head += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n" }
        var bytes = Array((head + "\r\n").utf8)
        if let body { bytes += body }
        var off = 0
        while off < bytes.count {
            try wait(fd, POLLOUT, deadline)
            let n = bytes[off...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 && (errno == EAGAIN || errno == EINTR) { continue }
            guard n > 0 else { throw Failure(description: "the admin API at \(endpoint) closed the connection: \(String(cString: strerror(errno)))") }
            off += n
        }
        var reply: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while reply.count < 16 << 20 {
            try wait(fd, POLLIN, deadline)
            let n = recv(fd, &buf, buf.count, 0)
            if n < 0 && (errno == EAGAIN || errno == EINTR) { continue }
            if n <= 0 { break }
            reply += buf[0..<n]
        }
        let text = String(decoding: reply, as: UTF8.self)
        guard let split = text.range(of: "\r\n\r\n"),
            let status = text.split(separator: " ", maxSplits: 2).dropFirst().first.flatMap({ Int($0) })
        else { throw Failure(description: "the admin API at \(endpoint) sent no HTTP response (is it lodestar's admin listen address?)") }
        return Reply(status: status, body: String(text[split.upperBound...]))
    }

    func connect(_ deadline: Date) throws -> Int32 {
        let v6 = host.contains(":")
        let fd = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
        var r: Int32
        if v6 {
            var sa = sockaddr_in6()
            sa.sin6_family = sa_family_t(AF_INET6)
            sa.sin6_port = in_port_t(UInt16(port).bigEndian)
            _ = inet_pton(AF_INET6, host, &sa.sin6_addr)
            r = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        } else {
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            sa.sin_port = in_port_t(UInt16(port).bigEndian)
            _ = inet_pton(AF_INET, host, &sa.sin_addr)
            r = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        }
        if r < 0 && errno != EINPROGRESS {
            let e = errno
            close(fd)
            throw notRunning(e)
        }
        do { try wait(fd, POLLOUT, deadline) } catch { close(fd); throw error }
        var err: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
        if err != 0 {
            close(fd)
            throw notRunning(err)
        }
        return fd
    }

    func notRunning(_ e: Int32) -> Failure {
        if e == ECONNREFUSED {
            return Failure(description: "lodestar is not running, or not with its admin API on \(endpoint) (connection refused)")
        }
        return Failure(description: "cannot reach the admin API at \(endpoint): \(String(cString: strerror(e)))")
    }

    func wait(_ fd: Int32, _ events: Int32, _ deadline: Date) throws {
        while true {
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { throw Failure(description: "the admin API at \(endpoint) did not answer within \(Int(timeout)) s") }
            var p = pollfd(fd: fd, events: Int16(events), revents: 0)
            let r = poll(&p, 1, Int32(min(left, 1) * 1000) + 1)
            if r > 0 { return }
            if r < 0 && errno != EINTR { throw Failure(description: "poll: \(String(cString: strerror(errno)))") }
        }
    }
}
