import Config
import DNSWire
import Foundation
import Steering
import Testing

/// The config loader on its own: YAML text to a model, or an error naming the file and line.
@Suite struct ConfigLoadingTests {
    /// Writes `yaml` to a temporary file and loads it; the folder is removed afterwards.
    static func load(_ yaml: String) throws -> Config {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lodestar-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("lodestar.yaml").path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return try Config.load(path)
    }

    @Test("server keys reach the model; zones resolve against the file's folder")
    func serverKeys() throws {
        let c = try Self.load(
            """
            server:
              listen: ["127.0.0.1:5353", "[::1]:5353"]
              zones: /srv/zones
              answer-cache: 0
              tcp-idle-timeout: 2.5
            transfer:
              allow: [192.0.2.0/24, "::1"]
            """)
        #expect(c.listen == ["127.0.0.1:5353", "[::1]:5353"])
        #expect(c.zonesDirectory == "/srv/zones")
        #expect(c.answerCache == 0)
        #expect(c.tcpIdleTimeout == 2.5)
        #expect(c.transferAllow.map(\.length) == [24, 128])
    }

    @Test(
        "bad values are refused with file:line",
        arguments: [
            ("server:\n  listen: nonsense\n", 2, "listen address"),
            ("server:\n  udp-workers: 9999\n", 2, "udp-workers must be between"),
            ("server:\n  colour: blue\n", 2, "unknown key \"colour\""),
            ("transfer:\n  allow: [192.0.2.0/33]\n", 2, "is not an address or CIDR prefix"),
            ("server: [1, 2]\n", 1, "must be a mapping"),
            ("server:\n  listen: [\"127.0.0.1:53\"\n", 3, "invalid YAML"),
            // A decimal escape cut short trapped the name parser (and a SIGHUP reload with it).
            ("names:\n  \"x\\\\9.\":\n    pools: [a]\n", 2, "is not a domain name"),
            ("cluster:\n  etcd: [\"etcd.example:2379\"]\n", 2, "is not http://ADDRESS:PORT"),
            (
                "cluster:\n  etcd: [\"http://127.0.0.1:2379\"]\n  compaction: 0.5\n", 3,
                "compaction must be 0 (never) or at least 1 second"
            ),
            ("cluster:\n  etcd: [\"http://127.0.0.1:2379\"]\n  compaction: -1\n", 3, "compaction"),
            ("cluster:\n  etcd: [\"http://127.0.0.1:2379\"]\n  pop: a/b\n", 3, "must be a name without /")
        ])
    func refused(yaml: String, line: Int, message: String) throws {
        do {
            _ = try Self.load(yaml)
            Issue.record("accepted: \(yaml)")
        } catch let e as ConfigError {
            #expect(e.line == line, "\(e)")
            #expect(e.message.contains(message), "\(e)")
            #expect(e.description.hasPrefix(e.file + ":\(line): "))
        }
    }

    @Test(
        "CIDR prefixes parse into the steering module's Prefix",
        arguments: [
            ("192.0.2.7", 4, 32), ("192.0.2.0/24", 4, 24), ("2001:db8::/32", 6, 32), ("::/0", 6, 0)
        ])
    func cidr(text: String, family: Int, length: Int) throws {
        let p = try #require(CIDR.parse(text))
        #expect(p.family == family && p.length == length)
    }

    @Test(
        "malformed CIDR prefixes are nil",
        arguments: ["", "/", "192.0.2.0/", "192.0.2.0/-1", "::1/129", "x/8", "1.2.3/8"])
    func badCIDR(text: String) {
        #expect(CIDR.parse(text) == nil)
    }

    @Test(
        "listen addresses: ADDR:PORT and [ADDR6]:PORT only",
        arguments: [
            ("127.0.0.1:53", true), ("[::1]:5300", true), ("127.0.0.1", false),
            ("[::1]53", false), ("127.0.0.1:65536", false), ("localhost:53", false), ("[::1:53", false)
        ])
    func listen(text: String, ok: Bool) {
        #expect((ListenAddress.parse(text) != nil) == ok)
    }
}
