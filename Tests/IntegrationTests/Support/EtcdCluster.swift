import Foundation
import OriginSupport

/// Three real etcd members (Debian's etcd-server) on loopback, free ports, own data folders,
/// stopped by pid.
final class EtcdCluster: @unchecked Sendable {
    let dir: String
    let clientPorts: [Int]
    let peerPorts: [Int]
    var members: [Process?]

    /// With TLS: the folder of make_certs.py's files; clients must present a certificate it signed.
    let certs: String?

    var endpoints: [String] { clientPorts.map { "\(certs == nil ? "http" : "https")://127.0.0.1:\($0)" } }

    init(size: Int = 3, certs: String? = nil) throws {
        self.certs = certs
        dir = try Paths.temporaryDirectory()
        clientPorts = (0..<size).map { _ in FreePort.pick() }
        peerPorts = (0..<size).map { _ in FreePort.pick() }
        members = Array(repeating: nil, count: size)
        for i in 0..<size { try start(i) }
        let ok = Poll.seconds(limit: 20, every: 0.2) { (0..<size).allSatisfy { self.healthy($0) } }
        guard ok != nil else { throw TestFailure("etcd did not become healthy: \(log(0).suffix(1500))") }
    }

    var initialCluster: String {
        peerPorts.enumerated().map { "m\($0.offset)=http://127.0.0.1:\($0.element)" }.joined(separator: ",")
    }

    func log(_ i: Int) -> String { (try? String(contentsOfFile: dir + "/m\(i).log", encoding: .utf8)) ?? "" }

    /// Starts member `i` (again: from its data folder).
    func start(_ i: Int) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/etcd")
        p.arguments = [
            "--name", "m\(i)", "--data-dir", dir + "/m\(i).data",
            "--listen-client-urls", endpoints[i], "--advertise-client-urls", endpoints[i],
            "--listen-peer-urls", "http://127.0.0.1:\(peerPorts[i])", "--initial-advertise-peer-urls",
            "http://127.0.0.1:\(peerPorts[i])",
            "--initial-cluster", initialCluster, "--initial-cluster-state", "new", "--initial-cluster-token",
            "lodestar-test",
            "--heartbeat-interval", "100", "--election-timeout", "1000", "--log-level", "warn"
        ]
        if let certs {
            p.arguments! += [
                "--cert-file", certs + "/good.pem", "--key-file", certs + "/good.key", "--client-cert-auth",
                "--trusted-ca-file", certs + "/ca.pem"
            ]
        }
        let log = dir + "/m\(i).log"
        if !FileManager.default.fileExists(atPath: log) { FileManager.default.createFile(atPath: log, contents: nil) }
        let h = FileHandle(forWritingAtPath: log)
        h?.seekToEndOfFile()
        p.standardOutput = h
        p.standardError = h
        try p.run()
        members[i] = p
    }

    /// Whether member `i` answers /health with a leader.
    func healthy(_ i: Int) -> Bool {
        var args = ["-s", "--max-time", "1", endpoints[i] + "/health"]
        if let certs {
            args += ["--cacert", certs + "/ca.pem", "--cert", certs + "/good.pem", "--key", certs + "/good.key"]
        }
        guard let r = try? Command.run("/usr/bin/curl", args, timeout: 3) else { return false }
        return r.output.contains("\"health\":\"true\"")
    }

    /// Stops member `i` (SIGKILL: as a crash).
    func kill(_ i: Int) {
        guard let p = members[i], p.isRunning else { return }
        Foundation.kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        members[i] = nil
    }

    /// A key's value through etcd's JSON gateway on a live member (nil when absent).
    func get(_ key: String) -> String? {
        for (i, port) in clientPorts.enumerated() where members[i] != nil {
            let body = "{\"key\":\"\(Data(key.utf8).base64EncodedString())\"}"
            guard
                let r = try? Command.run(
                    "/usr/bin/curl",
                    ["-s", "--max-time", "2", "-X", "POST", "http://127.0.0.1:\(port)/v3/kv/range", "-d", body]),
                let o = try? JSONSerialization.jsonObject(with: Data(r.output.utf8)) as? [String: Any]
            else { continue }
            guard let kv = (o["kvs"] as? [[String: Any]])?.first, let v = kv["value"] as? String,
                let d = Data(base64Encoded: v)
            else { return nil }
            return String(decoding: d, as: UTF8.self)
        }
        return nil
    }

    func stop() {
        for i in 0..<members.count { kill(i) }
        try? FileManager.default.removeItem(atPath: dir)
    }
}
