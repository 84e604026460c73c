import Foundation

/// Test origins (Tests/Origins/origin.py) on 127.0.0.1, stopped by pid.
public final class Origins: @unchecked Sendable {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    let process = Process()
    public let control: Int
    /// Where make_certs.py wrote ca.pem, good.pem, expired.pem.
    public let certs: String

    /// `specs`: "PORT" for HTTP, "PORT:tls=good", "PORT:dns" on 127.0.0.1, or "ADDR:PORT…" on another
    /// loopback address.
    public init(_ specs: [String]) throws {
        certs = NSTemporaryDirectory() + "lodestar-certs-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: certs, withIntermediateDirectories: true)
        let mk = Process()
        mk.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        mk.arguments = ["python3", Origins.root + "/Tests/Origins/make_certs.py", certs]
        try mk.run()
        mk.waitUntilExit()
        control = FreePort.pick()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments =
            [
                "python3", Origins.root + "/Tests/Origins/origin.py", "--control", "\(control)", "--certs", certs,
                "--lifetime", "300"
            ] + specs.map { $0.hasPrefix("127.") ? $0 : "127.0.0.1:\($0)" }
        let errors = certs + "/origin.err"
        _ = FileManager.default.createFile(atPath: errors, contents: nil)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: errors)
        try process.run()
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline && process.isRunning {
            if (try? get("/hits?origin=none")) != nil { return }
            usleep(50_000)
        }
        let why = (try? String(contentsOfFile: errors, encoding: .utf8)) ?? ""
        stop()
        throw OriginFailure("origin.py did not start: \(why.suffix(600))")
    }

    /// A request to the control port through a plain socket; returns the body.
    public func get(_ path: String) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var tv = timeval(tv_sec: 3, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        a.sin_port = UInt16(control).bigEndian
        let ok = withUnsafePointer(to: &a) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard ok == 0 else { throw OriginFailure("control port refused") }
        let req = Array("GET \(path) HTTP/1.1\r\nHost: x\r\n\r\n".utf8)
        _ = send(fd, req, req.count, 0)
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { break }
            out += buf[0..<n]
        }
        let text = String(decoding: out, as: UTF8.self)
        guard let r = text.range(of: "\r\n\r\n") else { throw OriginFailure("bad control reply") }
        return String(text[r.upperBound...])
    }

    public func mode(_ port: Int, _ mode: String) throws {
        try self.mode("127.0.0.1:\(port)", mode)
    }

    /// Switches origin "ADDR:PORT" to `mode` (ok, 500, hang, garbage, reset, trickle, slow:MS, down).
    public func mode(_ origin: String, _ mode: String) throws {
        _ = try get("/mode?origin=\(origin)&mode=\(mode)")
    }

    public func stop() {
        if process.isRunning {
            // SIGKILL: a child of the test runner may inherit SIGTERM blocked.
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: certs)
    }

    deinit { stop() }
}

public struct OriginFailure: Error, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = d }
}
