import Foundation
import OriginSupport
import Testing

/// Whether a lodestar package is installed already (then the test leaves the machine alone).
func packageInstalledAlready() -> Bool {
    ((try? Command.run("/usr/bin/dpkg-query", ["-W", "-f=${Status}", "lodestar"]))?.output ?? "").contains("install ok installed")
}

/// The Debian package, built by scripts/package.sh from the test build's binary, installed with
/// dpkg on this machine, run as systemd would run it, and purged.
@Suite("Debian package", .serialized,
       .enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/dpkg-deb"), "needs root and dpkg"),
       .enabled(if: !packageInstalledAlready(), "lodestar is installed on this machine: not touching it"))
struct PackageTests {
    @Test("build, dpkg -i, check, systemd-analyze verify, serve as user lodestar with the unit's capability, purge",
          .timeLimit(.minutes(5)))
    func installServePurge() throws {
        let out = try Paths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: out) }
        let manual = Paths.packageRoot + "/.build/debug/generate-manual"
        let build = try Command.run("/usr/bin/env", ["GENERATE_MANUAL=\(manual)", Paths.packageRoot + "/scripts/package.sh",
                                                     "--binary", Paths.binary, "--output", out], timeout: 240)
        try #require(build.status == 0, "package.sh: \(build.error)")
        let deb = build.output.trimmingCharacters(in: .whitespacesAndNewlines)
        let info = try Command.run("/usr/bin/dpkg-deb", ["-I", deb])
        #expect(info.output.contains("Package: lodestar") && info.output.contains("libldns3") && info.output.contains("libmaxminddb0"),
                "\(info.output)")
        let install = try Command.run("/usr/bin/dpkg", ["-i", deb], timeout: 120)
        defer { _ = try? Command.run("/usr/bin/dpkg", ["--purge", "lodestar"], timeout: 120) }
        try #require(install.status == 0, "dpkg -i: \(install.output)\(install.error)")
        let conffiles = try String(contentsOfFile: "/var/lib/dpkg/info/lodestar.conffiles", encoding: .utf8)
        #expect(conffiles.contains("/etc/lodestar/lodestar.yaml") && conffiles.contains("/etc/lodestar/zones/example.com.zone"))
        let id = try Command.run("/usr/bin/id", ["-u", "lodestar"])
        let uid = try #require(Int(id.output.trimmingCharacters(in: .whitespacesAndNewlines)), "the lodestar user: \(id)")
        #expect(uid > 0 && uid < 1000, "a system user")
        // `lodestar check` on the installed config, as the service user (the unit's ExecStartPre).
        let check = try Command.run("/usr/bin/setpriv", ["--reuid", "lodestar", "--regid", "lodestar", "--init-groups",
                                                         "/usr/bin/lodestar", "check", "--config", "/etc/lodestar/lodestar.yaml"])
        #expect(check.status == 0 && check.output.hasPrefix("ok: 1 zones"), "\(check.output)\(check.error)")
        let verify = try Command.run("/usr/bin/systemd-analyze", ["verify", "/lib/systemd/system/lodestar.service"], timeout: 30)
        #expect(verify.status == 0 && verify.error.isEmpty, "systemd-analyze verify: \(verify.error)")
        #expect(try Command.run("/usr/bin/man", ["-w", "lodestar"]).output.contains("/usr/share/man/man1/lodestar.1"))
        #expect(FileManager.default.fileExists(atPath: "/usr/share/bash-completion/completions/lodestar"))
        // As the unit runs it: user lodestar from the start, CAP_NET_BIND_SERVICE as an ambient
        // capability for port 53, in a network namespace of the test's own.
        let ns = "ls-pkg-\(UUID().uuidString.prefix(6))"
        _ = try Command.run("/usr/bin/env", ["ip", "netns", "add", ns])
        defer { _ = try? Command.run("/usr/bin/env", ["ip", "netns", "del", ns]) }
        _ = try Command.run("/usr/bin/env", ["ip", "-n", ns, "link", "set", "lo", "up"])
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["ip", "netns", "exec", ns, "/usr/bin/setpriv", "--reuid", "lodestar", "--regid", "lodestar", "--init-groups",
                       "--inh-caps", "+net_bind_service", "--ambient-caps", "+net_bind_service",
                       "/usr/bin/lodestar", "serve", "--config", "/etc/lodestar/lodestar.yaml"]
        p.currentDirectoryURL = URL(fileURLWithPath: "/var/lib/lodestar")
        let log = out + "/serve.log"
        FileManager.default.createFile(atPath: log, contents: nil)
        p.standardError = FileHandle(forWritingAtPath: log)
        p.standardOutput = FileHandle(forWritingAtPath: log)
        try p.run()
        defer {
            kill(p.processIdentifier, SIGTERM)
            let deadline = Date().addingTimeInterval(5)
            while p.isRunning && Date() < deadline { usleep(20_000) }
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
            p.waitUntilExit()
        }
        func serveLog() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        func dig(_ args: String...) throws -> DigResult {
            DigResult(try Command.run("/usr/bin/env", ["ip", "netns", "exec", ns, "dig", "@127.0.0.1", "-p", "53", "+norec",
                                                       "+tries=1", "+time=1"] + args).output)
        }
        let up = try Poll.seconds(limit: 15, every: 0.1) { try dig("example.com", "SOA").status == "NOERROR" }
        try #require(up != nil, "serves on port 53: \(serveLog())")
        #expect(try dig("www.example.com", "A", "+subnet=198.51.100.0/24").addresses == ["198.51.100.11"])
        let st = PrivilegeTests.status(p.processIdentifier)
        #expect(st["Uid"]?.split(separator: "\t").allSatisfy { Int($0) == uid } == true, "\(st["Uid"] ?? "")")
        #expect(st["CapEff"] == "0000000000000000" && st["CapAmb"] == "0000000000000000" && st["CapPrm"] == "0000000000000000",
                "the capability is given up once port 53 is bound: \(st.filter { $0.key.hasPrefix("Cap") })")
        let ctl = try Command.run("/usr/bin/env", ["ip", "netns", "exec", ns, "/usr/bin/lodestar", "ctl", "drain", "na",
                                                   "--config", "/etc/lodestar/lodestar.yaml"])
        #expect(ctl.status == 0, "\(ctl.error)")
        #expect(Poll.seconds(limit: 5, every: 0.05) { FileManager.default.fileExists(atPath: "/var/lib/lodestar/state.json") } != nil,
                "state in /var/lib/lodestar: \(serveLog())")
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "\(serveLog())")
        let purge = try Command.run("/usr/bin/dpkg", ["--purge", "lodestar"], timeout: 120)
        #expect(purge.status == 0, "\(purge.output)\(purge.error)")
        for path in ["/usr/bin/lodestar", "/etc/lodestar", "/var/lib/lodestar", "/lib/systemd/system/lodestar.service"] {
            #expect(!FileManager.default.fileExists(atPath: path), "\(path) left after purge")
        }
        #expect(try Command.run("/usr/bin/id", ["lodestar"]).status != 0, "the user is removed")
    }
}
