package import Foundation

/// A reply from BIRD's control socket: the final line's code, and every line's text.
package struct BirdReply: Sendable, Equatable {
    /// The code of the final line: below 8000 succeeded; 8xxx run-time error, 9xxx parse error.
    package var code: Int
    /// (code, text) of each line, continuation lines carrying the previous code; the final line last.
    package var lines: [(code: Int, text: String)]
    /// Asynchronous `+` lines that arrived meanwhile (never part of the reply).
    package var async: [String] = []

    package var ok: Bool { code < 8000 }
    package var text: String { lines.map(\.text).joined(separator: "\n") }

    package static func == (a: BirdReply, b: BirdReply) -> Bool {
        a.code == b.code && a.lines.map(\.code) == b.lines.map(\.code) && a.lines.map(\.text) == b.lines.map(\.text)
    }
}

package struct BirdError: Error, CustomStringConvertible, Equatable {
    package var description: String
    package init(_ d: String) { description = d }
}

/// Parses BIRD's reply framing (nest/cli.c): `DDDD-text` continues, `DDDD text` ends the reply,
/// ` text` continues with the previous code, `+text` is asynchronous output.
package struct BirdReplyParser: Sendable {
    var lines: [(code: Int, text: String)] = []
    var async: [String] = []
    var lastCode = 0

    package init() {}

    /// Feeds one line (without its newline); returns the reply when the line is final.
    package mutating func feed(_ line: String) throws -> BirdReply? {
        if line.hasPrefix("+") {
            async.append(String(line.dropFirst()))
            return nil
        }
        if line.hasPrefix(" ") {
            lines.append((lastCode, String(line.dropFirst())))
            return nil
        }
        let bytes = Array(line.utf8)
        guard bytes.count >= 5, bytes[0..<4].allSatisfy({ (48...57).contains($0) }), bytes[4] == 32 || bytes[4] == 45,
            let code = Int(String(decoding: bytes[0..<4], as: UTF8.self))
        else {
            throw BirdError("unexpected line from BIRD: \"\(line.prefix(80))\"")
        }
        lastCode = code
        lines.append((code, String(decoding: bytes[5...], as: UTF8.self)))
        guard bytes[4] == 32 else { return nil }
        let reply = BirdReply(code: code, lines: lines, async: async)
        lines = []
        async = []
        return reply
    }
}

/// One connection to BIRD's control socket (the unix socket `birdc` uses). Blocking, with a
/// deadline on every read; one short command at a time, reading to the final line before the next
/// (BIRD 2.0.12 resets a connection with ~1 KiB unread, hangs on a line ≥ 4095 bytes, and drops a
/// command followed by a half-close — so: short commands, never pipelined, never half-closed).
package final class BirdClient {
    package let path: String
    package let timeout: Double
    var fd: Int32 = -1
    var buffer: [UInt8] = []
    /// The version from the greeting (`0001 BIRD 2.0.12 ready.`).
    package private(set) var greeting = ""

    /// Longest command sent: far below the 4,095 bytes that hang BIRD 2.0.12.
    package static let maxCommand = 512

    package init(path: String, timeout: Double = 2) {
        self.path = path
        self.timeout = timeout
    }

    deinit { close() }

    package var isConnected: Bool { fd >= 0 }

    /// Connects and reads the greeting, within `timeout` in all: the socket is non-blocking, so a
    /// BIRD that is stopped or too busy to accept (its backlog full) is an error, not a hang.
    package func connect() throws {
        close()
        guard path.utf8.count < 108 else { throw BirdError("\(path): socket path longer than 107 bytes") }
        let s = socket(
            AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { throw BirdError("socket: \(String(cString: strerror(errno)))") }
        var addr = Self.unixAddress(path)
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(s, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        if r != 0 {
            let e = errno
            if e == EINPROGRESS {
                // Connected when writable, or failed with the error SO_ERROR holds.
                var p = pollfd(fd: s, events: Int16(POLLOUT), revents: 0)
                let ready = poll(&p, 1, Int32(timeout * 1000))
                var err: Int32 = 0
                var len = socklen_t(MemoryLayout<Int32>.size)
                if ready <= 0 || getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0 {
                    Glibc.close(s)
                    throw BirdError(
                        ready <= 0
                            ? "\(path): connect did not complete within \(timeout) s (BIRD hung?)"
                            : "\(path): \(String(cString: strerror(err)))")
                }
            } else {
                Glibc.close(s)
                switch e {
                case ENOENT: throw BirdError("\(path): no such socket (is BIRD running with this control socket?)")
                case ECONNREFUSED: throw BirdError("\(path): connection refused (BIRD is not running)")
                case EACCES: throw BirdError("\(path): permission denied (add lodestar's user to BIRD's group)")
                case EAGAIN:
                    throw BirdError(
                        "\(path): BIRD is not accepting connections (its backlog is full: hung or overloaded?)")
                default: throw BirdError("\(path): \(String(cString: strerror(e)))")
                }
            }
        }
        fd = s
        buffer = []
        let hello: BirdReply
        do {
            hello = try readReply()
        } catch {
            close()
            throw error
        }
        guard hello.code == 1 else {
            close()
            throw BirdError("\(path): unexpected greeting \"\(hello.text.prefix(80))\"")
        }
        greeting = String(hello.text.prefix(200))
    }

    /// The address of a unix socket at `path` (shorter than 108 bytes).
    package static func unixAddress(_ path: String) -> sockaddr_un {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            let p = Array(path.utf8.prefix(raw.count - 1))
            raw.copyBytes(from: p)
            raw[p.count] = 0
        }
        return addr
    }

    package func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
        buffer = []
    }

    /// Sends one command and reads its whole reply. Throws on a transport error (the connection is
    /// closed then); a BIRD error is a reply with code ≥ 8000.
    package func send(_ command: String) throws -> BirdReply {
        guard !command.isEmpty, command.utf8.count <= Self.maxCommand,
            !command.contains(where: { $0 == "\n" || $0 == "\r" || $0 == "\0" })
        else {
            throw BirdError(
                "refusing to send a command that is empty, longer than \(Self.maxCommand) bytes or multi-line")
        }
        if fd < 0 { try connect() }
        let bytes = Array((command + "\n").utf8)
        var sent = 0
        let deadline = Date().addingTimeInterval(timeout)
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK {
                    // BIRD does not read: wait for room, never past the deadline.
                    let left = deadline.timeIntervalSinceNow
                    var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                    if left > 0 && poll(&p, 1, Int32(left * 1000) + 1) >= 0 { continue }
                    close()
                    throw BirdError("\(path): BIRD did not take a command within \(timeout) s (hung?)")
                }
                let why = String(cString: strerror(errno))
                close()
                throw BirdError("\(path): send failed: \(why)")
            }
            sent += n
        }
        do {
            return try readReply()
        } catch {
            close()
            throw error
        }
    }

    /// Reads lines until a final one, each read bounded by `timeout`.
    func readReply() throws -> BirdReply {
        var parser = BirdReplyParser()
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            while let nl = buffer.firstIndex(of: 10) {
                let line = String(decoding: buffer[..<nl], as: UTF8.self)
                buffer.removeSubrange(...nl)
                if let reply = try parser.feed(line) { return reply }
            }
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { throw BirdError("\(path): no reply within \(timeout) s (BIRD hung?)") }
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let r = poll(&p, 1, Int32(left * 1000) + 1)
            if r < 0 && errno == EINTR { continue }
            guard r > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 4096)
            let n = recv(fd, &chunk, chunk.count, 0)
            if n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) { continue }
            guard n > 0 else { throw BirdError("\(path): BIRD closed the connection") }
            buffer += chunk[0..<n]
            if buffer.count > 1 << 22 { throw BirdError("\(path): reply longer than 4 MiB") }
        }
    }
}
