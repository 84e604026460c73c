import Foundation
import OriginSupport
import Testing

/// Whether a lodestar package is installed already (then the test leaves the machine alone).
func packageInstalledAlready() -> Bool {
    ((try? Command.run("/usr/bin/dpkg-query", ["-W", "-f=${Status}", "lodestar"]))?.output ?? "").contains(
        "install ok installed")
}

/// Whether a user or group named lodestar exists (someone's, or a run's left over): not touched either.
func lodestarAccountExists() -> Bool {
    getpwnam("lodestar") != nil || getgrnam("lodestar") != nil
}

/// The Debian package, built by scripts/package.sh from the test build's binary, checked with
/// lintian, installed with dpkg on this machine, run as systemd would run it, removed and purged
/// while it runs; and refused over an account of that name that the package did not create.
@Suite(
    "Debian package", .serialized,
    .enabled(
        if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/dpkg-deb"), "needs root and dpkg"),
    .enabled(if: !packageInstalledAlready(), "lodestar is installed on this machine: not touching it"),
    .enabled(if: !lodestarAccountExists(), "a lodestar user or group exists on this machine: not touching it"))
struct PackageTests {
    /// scripts/package.sh on the test build's binary: the .deb and the lodestar-dbgsym .deb beside it.
    static func build(into out: String) throws -> (deb: String, dbgsym: String) {
        let manual = Paths.packageRoot + "/.build/debug/generate-manual"
        let build = try Command.run(
            "/usr/bin/env",
            [
                "GENERATE_MANUAL=\(manual)", Paths.packageRoot + "/scripts/package.sh",
                "--binary", Paths.binary, "--output", out
            ], timeout: 400)
        try #require(build.status == 0, "package.sh: \(build.error)")
        let deb = build.output.trimmingCharacters(in: .whitespacesAndNewlines)
        let name = URL(fileURLWithPath: deb).lastPathComponent
        return (deb, out + "/" + name.replacingOccurrences(of: "lodestar_", with: "lodestar-dbgsym_"))
    }

    static func output(_ r: Command.Result) -> String { r.output + r.error }

    /// The build ID of an ELF file (readelf -n).
    static func buildID(_ path: String) throws -> String {
        let notes = try Command.run("/usr/bin/readelf", ["-n", path]).output
        let line = notes.split(separator: "\n").first { $0.contains("Build ID:") } ?? ""
        return line.split(separator: " ").last.map(String.init) ?? ""
    }

    @Test(
        "build, lintian, stripped binary and dbgsym, dpkg -i, check, systemd-analyze verify, serve on UDP and TCP as user lodestar with the unit's capability, dpkg -r and purge stop a daemon started by hand",
        .timeLimit(.minutes(10)))
    func installServePurge() throws {
        let out = try Paths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: out) }
        let (deb, dbgsym) = try Self.build(into: out)
        let info = try Command.run("/usr/bin/dpkg-deb", ["-I", deb])
        #expect(
            info.output.contains("Package: lodestar") && info.output.contains("libldns3")
                && info.output.contains("libmaxminddb0"),
            "\(info.output)")
        // lintian: no errors (warnings are allowed; the overrides in the package say why each is there).
        try #require(
            FileManager.default.isExecutableFile(atPath: "/usr/bin/lintian"),
            "lintian is missing: scripts/install-deps.sh --test")
        let lintian = try Command.run("/usr/bin/lintian", [deb, dbgsym], timeout: 300)
        let errors = Self.output(lintian).split(separator: "\n").filter { $0.hasPrefix("E: ") }
        #expect(lintian.status == 0 && errors.isEmpty, "lintian: \(Self.output(lintian))")
        // The debug symbols: in the dbgsym package, under the build ID of the binary in the package.
        let dbg = out + "/dbgsym"
        let unpack = try Command.run("/usr/bin/dpkg-deb", ["-x", dbgsym, dbg])
        #expect(unpack.status == 0, "the lodestar-dbgsym package: \(unpack.error)")

        let install = try Command.run("/usr/bin/dpkg", ["-i", deb], timeout: 120)
        defer { _ = try? Command.run("/usr/bin/dpkg", ["--purge", "lodestar"], timeout: 180) }
        try #require(install.status == 0, "dpkg -i: \(Self.output(install))")
        let conffiles = try String(contentsOfFile: "/var/lib/dpkg/info/lodestar.conffiles", encoding: .utf8)
        #expect(
            conffiles.contains("/etc/lodestar/lodestar.yaml")
                && conffiles.contains("/etc/lodestar/zones/example.com.zone"))
        // Stripped (no symbol table, no DWARF), linked to its debug file, which has them.
        let sections = try Command.run("/usr/bin/readelf", ["-S", "-W", "/usr/bin/lodestar"]).output
        #expect(
            !sections.contains(".debug_info") && !sections.contains(".symtab") && sections.contains(".gnu_debuglink"),
            "the installed binary is stripped: \(sections)")
        let id = try Self.buildID("/usr/bin/lodestar")
        let debugFile = "\(dbg)/usr/lib/debug/.build-id/\(id.prefix(2))/\(id.dropFirst(2)).debug"
        #expect(id.count == 40 && FileManager.default.fileExists(atPath: debugFile), "debug file \(debugFile)")
        if FileManager.default.fileExists(atPath: debugFile) {
            let debugSections = try Command.run("/usr/bin/readelf", ["-S", "-W", debugFile]).output
            #expect(debugSections.contains(".debug_info") && debugSections.contains(".symtab"), "\(debugSections)")
        }
        let version = try Command.run("/usr/bin/lodestar", ["--version"]).output.trimmingCharacters(
            in: .whitespacesAndNewlines)
        #expect(!version.isEmpty)
        // copyright (machine-readable) and changelog.gz for this version.
        // The manual the README points into comes with it.
        for page in ["docs/README.md", "docs/configuration.md", "docs/operations.md", "SECURITY.md"] {
            #expect(FileManager.default.fileExists(atPath: "/usr/share/doc/lodestar/" + page), "\(page) installed")
        }
        let copyright = (try? String(contentsOfFile: "/usr/share/doc/lodestar/copyright", encoding: .utf8)) ?? ""
        #expect(
            copyright.hasPrefix("Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/")
                && copyright.contains("\nLicense: Proprietary"), "copyright: \(copyright)")
        let changelog = try Command.run("/usr/bin/gzip", ["-dc", "/usr/share/doc/lodestar/changelog.gz"])
        #expect(
            changelog.status == 0 && changelog.output.hasPrefix("lodestar (\(version)) "),
            "changelog: \(Self.output(changelog))")

        let idOut = try Command.run("/usr/bin/id", ["-u", "lodestar"])
        let uid = try #require(
            Int(idOut.output.trimmingCharacters(in: .whitespacesAndNewlines)), "the lodestar user: \(idOut)")
        #expect(uid > 0 && uid < 1000, "a system user")
        // `lodestar check` on the installed config, as the service user (the unit's ExecStartPre).
        let check = try Command.run(
            "/usr/bin/setpriv",
            [
                "--reuid", "lodestar", "--regid", "lodestar", "--init-groups",
                "/usr/bin/lodestar", "check", "--config", "/etc/lodestar/lodestar.yaml"
            ])
        #expect(check.status == 0 && check.output.hasPrefix("ok: 1 zones"), "\(check.output)\(check.error)")
        let verify = try Command.run(
            "/usr/bin/systemd-analyze", ["verify", "/lib/systemd/system/lodestar.service"], timeout: 30)
        #expect(verify.status == 0 && verify.error.isEmpty, "systemd-analyze verify: \(verify.error)")
        #expect(try Command.run("/usr/bin/man", ["-w", "lodestar"]).output.contains("/usr/share/man/man1/lodestar.1"))
        #expect(FileManager.default.fileExists(atPath: "/usr/share/bash-completion/completions/lodestar"))
        // A TXT RRset too big for a 512-byte answer: truncated over UDP without EDNS, whole over TCP.
        var big =
            "$TTL 300\n@ SOA ns.big.test. hostmaster.big.test. 1 7200 3600 1209600 300\n@ NS ns\nns A 192.0.2.53\n"
        for i in 0..<30 { big += "many TXT \"record \(i) of a set that does not fit in one UDP answer\"\n" }
        let bigZone = "/etc/lodestar/zones/big.test.zone"
        try big.write(toFile: bigZone, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: bigZone)

        // As the unit runs it: user lodestar from the start, CAP_NET_BIND_SERVICE as an ambient
        // capability for port 53, in a network namespace of the test's own; the unit's
        // RuntimeDirectory=, if it has one, made as systemd makes it.
        let unit = try String(contentsOfFile: "/lib/systemd/system/lodestar.service", encoding: .utf8)
        func unitSetting(_ key: String) -> String? {
            unit.split(separator: "\n").first { $0.hasPrefix(key + "=") }.map { String($0.dropFirst(key.count + 1)) }
        }
        if let runtime = unitSetting("RuntimeDirectory") {
            let dir = "/run/" + runtime
            let made = try Command.run(
                "/usr/bin/install",
                [
                    "-d", "-o", "lodestar", "-g", "lodestar", "-m",
                    unitSetting("RuntimeDirectoryMode") ?? "0755", dir
                ])
            try #require(made.status == 0, "RuntimeDirectory: \(made.error)")
        }
        defer {
            if let runtime = unitSetting("RuntimeDirectory") {
                try? FileManager.default.removeItem(atPath: "/run/" + runtime)
            }
        }
        let ns = "ls-pkg-\(UUID().uuidString.prefix(6))"
        _ = try Command.run("/usr/bin/env", ["ip", "netns", "add", ns])
        defer { _ = try? Command.run("/usr/bin/env", ["ip", "netns", "del", ns]) }
        _ = try Command.run("/usr/bin/env", ["ip", "-n", ns, "link", "set", "lo", "up"])
        var daemons: [Process] = []
        defer {
            for p in daemons where p.isRunning {
                kill(p.processIdentifier, SIGTERM)
                let deadline = Date().addingTimeInterval(5)
                while p.isRunning && Date() < deadline { usleep(20_000) }
                if p.isRunning { kill(p.processIdentifier, SIGKILL) }
                p.waitUntilExit()
            }
        }
        let log = out + "/serve.log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        func serveLog() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
        func dig(_ args: String...) throws -> DigResult {
            DigResult(
                try Command.run(
                    "/usr/bin/env",
                    [
                        "ip", "netns", "exec", ns, "dig", "@127.0.0.1", "-p", "53", "+norec",
                        "+tries=1", "+time=1"
                    ] + args
                ).output)
        }
        /// `lodestar serve` started by hand (not by systemd), answering on port 53.
        func serve() throws -> Process {
            try #require(try dig("example.com", "SOA").status.isEmpty, "no daemon answers before this one starts")
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            p.arguments = [
                "ip", "netns", "exec", ns, "/usr/bin/setpriv", "--reuid", "lodestar", "--regid", "lodestar",
                "--init-groups",
                "--inh-caps", "+net_bind_service", "--ambient-caps", "+net_bind_service",
                "/usr/bin/lodestar", "serve", "--config", "/etc/lodestar/lodestar.yaml"
            ]
            p.currentDirectoryURL = URL(fileURLWithPath: "/var/lib/lodestar")
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            handle.seekToEndOfFile()
            p.standardError = handle
            p.standardOutput = handle
            try p.run()
            daemons.append(p)
            let up = try Poll.seconds(limit: 15, every: 0.1) { try dig("example.com", "SOA").status == "NOERROR" }
            try #require(up != nil, "serves on port 53: \(serveLog())")
            return p
        }
        let p = try serve()
        #expect(try dig("www.example.com", "A", "+subnet=198.51.100.0/24").addresses == ["198.51.100.11"])
        let tcp = try dig("+tcp", "www.example.com", "A", "+subnet=198.51.100.0/24")
        #expect(tcp.addresses == ["198.51.100.11"] && tcp.raw.contains("(TCP)"), "over TCP: \(tcp)")
        let truncated = try dig("+noedns", "+ignore", "many.big.test", "TXT")
        #expect(truncated.status == "NOERROR" && truncated.flags.contains("tc"), "truncated over UDP: \(truncated)")
        let fallback = try dig("+noedns", "many.big.test", "TXT")
        #expect(
            fallback.raw.contains("Truncated, retrying in TCP mode") && fallback.answer.count == 30
                && !fallback.flags.contains("tc"),
            "dig's TCP fallback: \(fallback)")
        let st = PrivilegeTests.status(p.processIdentifier)
        #expect(st["Uid"]?.split(separator: "\t").allSatisfy { Int($0) == uid } == true, "\(st["Uid"] ?? "")")
        #expect(
            st["CapEff"] == "0000000000000000" && st["CapAmb"] == "0000000000000000"
                && st["CapPrm"] == "0000000000000000",
            "the capability is given up once port 53 is bound: \(st.filter { $0.key.hasPrefix("Cap") })")
        let ctl = try Command.run(
            "/usr/bin/env",
            [
                "ip", "netns", "exec", ns, "/usr/bin/lodestar", "ctl", "drain", "na",
                "--config", "/etc/lodestar/lodestar.yaml"
            ])
        #expect(ctl.status == 0, "\(ctl.error)")
        #expect(
            Poll.seconds(limit: 5, every: 0.05) {
                FileManager.default.fileExists(atPath: "/var/lib/lodestar/state.json")
            } != nil,
            "state in /var/lib/lodestar: \(serveLog())")

        // dpkg -r while it runs: prerm stops it (SIGTERM: a clean exit); the user stays until purge.
        let remove = try Command.run("/usr/bin/dpkg", ["-r", "lodestar"], timeout: 180)
        #expect(remove.status == 0, "dpkg -r: \(Self.output(remove))")
        #expect(
            Poll.seconds(limit: 5, every: 0.05) { !p.isRunning } != nil,
            "dpkg -r stops the daemon started by hand: \(Self.output(remove))")
        if !p.isRunning {
            #expect(p.terminationReason == .exit && p.terminationStatus == 0, "stopped with SIGTERM: \(serveLog())")
        }
        #expect(
            Self.output(remove).contains("stopping lodestar processes of user lodestar"),
            "says so: \(Self.output(remove))")
        #expect(
            try Command.run("/usr/bin/id", ["-u", "lodestar"]).output.trimmingCharacters(in: .whitespacesAndNewlines)
                == "\(uid)",
            "dpkg -r keeps the user")
        // Installed again over its configuration files, then again over itself (an upgrade): the
        // account is the package's own, not a stranger's.
        let again = try Command.run("/usr/bin/dpkg", ["-i", deb], timeout: 120)
        #expect(again.status == 0, "dpkg -i after dpkg -r: \(Self.output(again))")
        let upgrade = try Command.run("/usr/bin/dpkg", ["-i", deb], timeout: 120)
        #expect(upgrade.status == 0, "dpkg -i over the installed package: \(Self.output(upgrade))")
        #expect(
            try Command.run("/usr/bin/id", ["-u", "lodestar"]).output.trimmingCharacters(in: .whitespacesAndNewlines)
                == "\(uid)",
            "the same user")

        // dpkg --purge while a daemon runs: stopped, then the user, the group and every file gone.
        let second = try serve()
        let purge = try Command.run("/usr/bin/dpkg", ["--purge", "lodestar"], timeout: 180)
        #expect(purge.status == 0, "\(Self.output(purge))")
        #expect(
            Poll.seconds(limit: 5, every: 0.05) { !second.isRunning } != nil,
            "dpkg --purge stops the daemon started by hand: \(Self.output(purge))")
        for path in [
            "/usr/bin/lodestar", "/etc/lodestar", "/var/lib/lodestar", "/var/lib/lodestar-package",
            "/lib/systemd/system/lodestar.service", "/etc/systemd/system/multi-user.target.wants/lodestar.service"
        ] {
            #expect(!FileManager.default.fileExists(atPath: path), "\(path) left after purge")
        }
        #expect(try Command.run("/usr/bin/id", ["lodestar"]).status != 0, "the user is removed: \(Self.output(purge))")
        #expect(try Command.run("/usr/bin/getent", ["group", "lodestar"]).status != 0, "the group is removed")
    }

    @Test(
        "a lodestar user or group the package did not create: dpkg -i refused with a message naming it, the account untouched, purge leaves it",
        .timeLimit(.minutes(10)))
    func refusesForeignAccount() throws {
        let out = try Paths.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: out) }
        let (deb, _) = try Self.build(into: out)
        /// The account as its owner knows it: passwd entry, groups, home folder.
        func account() throws -> String {
            try ["passwd", "group"].map { try Command.run("/usr/bin/getent", [$0, "lodestar"]).output }.joined()
                + Command.run("/usr/bin/id", ["lodestar"]).output
                + Command.run("/usr/bin/stat", ["-c", "%U:%G %a %Y", "/home/lodestar"]).output
        }
        // Someone's own account, named lodestar.
        let add = try Command.run(
            "/usr/sbin/useradd", ["--create-home", "--shell", "/bin/bash", "--comment", "Lode Star", "lodestar"])
        try #require(add.status == 0, "useradd: \(add.error)")
        defer { _ = try? Command.run("/usr/sbin/userdel", ["--remove", "lodestar"]) }
        defer { _ = try? Command.run("/usr/bin/dpkg", ["--purge", "lodestar"], timeout: 180) }
        let before = try account()
        let install = try Command.run("/usr/bin/dpkg", ["-i", deb], timeout: 120)
        #expect(install.status != 0, "dpkg -i over someone's account: \(Self.output(install))")
        #expect(
            Self.output(install).contains("a user named \"lodestar\" exists that this package did not create")
                && Self.output(install).contains("lodestar:x:") && Self.output(install).contains("Lode Star"),
            "the message names the account: \(Self.output(install))")
        #expect(
            !packageInstalledAlready() && !FileManager.default.fileExists(atPath: "/usr/bin/lodestar"), "not installed")
        #expect(try account() == before, "the account is untouched")
        let purge = try Command.run("/usr/bin/dpkg", ["--purge", "lodestar"], timeout: 180)
        #expect(try account() == before, "purge leaves an account the package did not create: \(Self.output(purge))")

        // A group of that name alone is refused too (the user would otherwise join it).
        _ = try Command.run("/usr/sbin/userdel", ["--remove", "lodestar"])
        if try Command.run("/usr/bin/getent", ["group", "lodestar"]).status != 0 {
            _ = try Command.run("/usr/sbin/groupadd", ["lodestar"])
        }
        defer { _ = try? Command.run("/usr/sbin/groupdel", ["lodestar"]) }
        let group = try Command.run("/usr/bin/getent", ["group", "lodestar"]).output
        let groupInstall = try Command.run("/usr/bin/dpkg", ["-i", deb], timeout: 120)
        #expect(
            groupInstall.status != 0
                && Self.output(groupInstall).contains(
                    "a group named \"lodestar\" exists that this package did not create"),
            "\(Self.output(groupInstall))")
        #expect(
            try Command.run("/usr/bin/getent", ["group", "lodestar"]).output == group && getpwnam("lodestar") == nil,
            "the group is untouched, no user made")
    }
}
