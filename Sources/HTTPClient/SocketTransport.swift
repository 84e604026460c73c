package import Foundation
import Glibc

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
        let fd = socket(
            v6 ? AF_INET6 : AF_INET,
            Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw HTTPConnection.Failure("socket: \(String(cString: strerror(errno)))", code: .local) }
        self.fd = fd
        var r: Int32
        if v6 {
            var sa = sockaddr_in6()
            sa.sin6_family = sa_family_t(AF_INET6)
            sa.sin6_port = in_port_t(UInt16(port).bigEndian)
            guard inet_pton(AF_INET6, host, &sa.sin6_addr) == 1 else {
                close(fd)
                throw HTTPConnection.Failure("\(host) is not an IP address", code: .local)
            }
            r = withUnsafePointer(to: &sa) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        } else {
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            sa.sin_port = in_port_t(UInt16(port).bigEndian)
            guard inet_pton(AF_INET, host, &sa.sin_addr) == 1 else {
                close(fd)
                throw HTTPConnection.Failure("\(host) is not an IP address", code: .local)
            }
            r = withUnsafePointer(to: &sa) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        if r < 0 && errno != EINPROGRESS {
            let e = errno
            close(fd)
            throw Self.connectFailure(e, endpoint)
        }
        do { try wait(POLLOUT, deadline) } catch {
            close(fd)
            throw error
        }
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
        let fd = socket(
            AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { throw HTTPConnection.Failure("socket: \(String(cString: strerror(errno)))", code: .local) }
        self.fd = fd
        var sa = sockaddr_un()
        sa.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: sa.sun_path) else {
            close(fd)
            throw HTTPConnection.Failure("\(path): the socket path is too long", code: .local)
        }
        withUnsafeMutableBytes(of: &sa.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
        }
        let r = withUnsafePointer(to: &sa) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if r < 0 && errno != EINPROGRESS && errno != EAGAIN {
            let e = errno
            close(fd)
            throw Self.connectFailure(e, path)
        }
        do { try wait(POLLOUT, deadline) } catch {
            close(fd)
            throw error
        }
    }

    deinit { close(fd) }

    static func connectFailure(_ e: Int32, _ endpoint: String) -> HTTPConnection.Failure {
        HTTPConnection.Failure(
            "cannot connect to \(endpoint): \(String(cString: strerror(e)))", code: .connect(errno: e))
    }

    func abort() { shutdown(fd, Int32(SHUT_RDWR)) }

    func send(_ bytes: [UInt8], deadline: Date) throws {
        var off = 0
        while off < bytes.count {
            try wait(POLLOUT, deadline)
            let n = bytes[off...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 && (errno == EAGAIN || errno == EINTR) { continue }
            guard n > 0 else {
                throw HTTPConnection.Failure(
                    "\(endpoint) closed the connection: \(String(cString: strerror(errno)))", code: .closed)
            }
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
            guard n > 0 else {
                throw HTTPConnection.Failure("\(endpoint): \(String(cString: strerror(errno)))", code: .closed)
            }
            return Array(tmp[0..<n])
        }
    }

    func wait(_ events: Int32, _ deadline: Date) throws {
        while true {
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { throw HTTPConnection.Failure("\(endpoint) did not answer in time", code: .timeout) }
            var p = pollfd(fd: fd, events: Int16(events), revents: 0)
            let r = poll(&p, 1, Int32(min(left, 1) * 1000) + 1)
            if r > 0 {
                if p.revents & Int16(POLLNVAL) != 0 {
                    throw HTTPConnection.Failure("\(endpoint): connection closed", code: .closed)
                }
                return
            }
            if r < 0 && errno != EINTR {
                throw HTTPConnection.Failure("poll: \(String(cString: strerror(errno)))", code: .local)
            }
        }
    }
}
