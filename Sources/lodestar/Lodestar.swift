import Admin
import ArgumentParser
import Config
import DNSWire
import Engine
import Foundation
import Geo
import Health
import Logging
import Protection
import Server
import Steering
import Zones

/// The `lodestar` command line.
@main
struct Lodestar: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lodestar",
        abstract: "A GSLB that is the authoritative nameserver of its zones.",
        discussion: """
            Signals (to `lodestar serve`): SIGHUP reloads config and zones (a failed reload keeps \
            the previous ones); SIGTERM and SIGINT stop: /ready turns 503, the anycast prefixes are \
            withdrawn and answers go on for anycast.shutdown-delay, then the process exits 0.

            Exit codes: 0 done; 1 `check` found a problem, or `ctl`/`explain` failed; 2 `serve` \
            could not start (config, zones folder, a socket, the user to run as); 64 a usage error.

            Under systemd (dist/lodestar.service): Type=notify, READY=1 once the zones are loaded \
            and the first round of health checks is done; WATCHDOG=1 while the UDP loops run; \
            log lines carry syslog priorities for journald.
            """,
        version: SoftwareVersion.current,
        subcommands: [Serve.self, Check.self, Explain.self, Ctl.self],
        defaultSubcommand: Serve.self
    )
}

/// `--log-level`: the levels, least severe first.
enum LogLevel: String, CaseIterable, ExpressibleByArgument {
    case trace, debug, info, notice, warning, error, critical
    var level: Logger.Level { Logger.Level(rawValue: rawValue) ?? .info }
}

/// `--log-format`.
enum LogFormat: String, CaseIterable, ExpressibleByArgument {
    case text, json
}

/// Options shared by every subcommand that reads config and zones.
struct SourceOptions: ParsableArguments {
    @Option(name: .long, help: "Config file (YAML). Default: lodestar.yaml in the current folder, if present.")
    var config: String?

    @Option(name: .long, help: "Folder of NAME.zone files (overrides the config).")
    var zones: String?

    @Option(name: .long, help: "MaxMind-format City or Country database (overrides geo.database in the config).")
    var geo: String?

    /// Applies the command-line overrides to a loaded config.
    func apply(_ config: inout Config) {
        if let zones { config.zonesDirectory = zones }
        if let geo { config.geoDatabase = geo }
    }

    /// The config path to use: explicit, or ./lodestar.yaml when it exists.
    var configPath: String? {
        if let config { return config }
        return FileManager.default.fileExists(atPath: "lodestar.yaml") ? "lodestar.yaml" : nil
    }

    func validateConfig() throws {
        // A config or database that cannot be read is a problem of the files (check: exit 1,
        // serve: exit 2, with the reason), not a usage error: the loaders say which and why.
        if let zones {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: zones, isDirectory: &isDir), isDir.boolValue else {
                throw ValidationError("zones folder \(zones) does not exist")
            }
        }
    }
}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve the zones (the default).")

    @OptionGroup var source: SourceOptions

    @Option(
        name: .long, help: "ADDR:PORT or [ADDR6]:PORT to listen on, UDP and TCP; repeatable (overrides the config).")
    var listen: [String] = []

    @Option(name: .long, help: "The least severe messages logged.")
    var logLevel: LogLevel = .info

    @Option(
        name: .long,
        help:
            "Log lines as text or as one JSON object each (on stderr; under journald without timestamps, with priorities)."
    )
    var logFormat: LogFormat = .text

    @Option(name: .long, help: "Started as root: open the sockets, then run as this user (overrides server.user).")
    var user: String? = nil

    @Option(name: .long, help: "The group to run as (overrides server.group; default the user's primary group).")
    var group: String? = nil

    @Option(
        name: .long,
        help: "Responses per second to one source prefix over UDP; 0 turns rate limiting off (overrides the config).")
    var rateLimit: Int? = nil

    func validate() throws {
        try source.validateConfig()
        if let r = rateLimit, !(0...1_000_000).contains(r) {
            throw ValidationError("--rate-limit must be between 0 and 1000000")
        }
        for l in listen where ListenAddress.parse(l) == nil {
            throw ValidationError("--listen \(l) is not ADDR:PORT or [ADDR6]:PORT")
        }
    }

    func run() throws {
        let hangUps = LodestarServer.EarlyHangUps()
        let output = LodestarLogHandler.Output(fd: 2)
        let format = LodestarLogHandler.Format(rawValue: logFormat.rawValue) ?? .text
        let journal = LodestarLogHandler.stderrIsJournal()
        var logger = Logger(label: "lodestar") {
            LodestarLogHandler(label: $0, format: format, journal: journal, output: output)
        }
        logger.logLevel = logLevel.level
        let source = source
        let listen = listen
        let rateLimit = rateLimit
        let user = user
        let group = group
        let server: LodestarServer
        do {
            server = try LodestarServer(
                configPath: source.configPath,
                overrides: { config in
                    source.apply(&config)
                    if !listen.isEmpty { config.listen = listen }
                    if let user { config.user = user }
                    if let group { config.group = group }
                    if let r = rateLimit {
                        config.rateLimit.responsesPerSecond = r
                        config.rateLimit.burst = max(1, 2 * r)
                    }
                }, logger: logger)
            try server.start()
        } catch {
            logger.critical("\(error)")
            throw ExitCode(2)
        }
        server.runUntilSignalled(early: hangUps)
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check config and zones; print every problem as file:line: message on stderr; exit 1 on any error.")

    @OptionGroup var source: SourceOptions

    func validate() throws { try source.validateConfig() }

    func run() throws {
        var config: Config
        do {
            config = try source.configPath.map(Config.load) ?? Config()
            if let path = source.configPath { try LodestarServer.checkTLS(config, path: path) }
        } catch {
            problem(error)
            throw ExitCode(1)
        }
        source.apply(&config)
        // `--geo FILE` is checked whole even when no name of the config needs a database.
        var geoSummary: String? = nil
        if let geo = source.geo {
            do {
                let db = try GeoDatabase(path: geo)
                geoSummary = "geo database \(geo) (\(db.databaseType), \(db.recordCount) records)"
            } catch let e as GeoError {
                problem("\(e.file):0: geo database: \(e.message)")
                throw ExitCode(1)
            }
        }
        let outcome: SnapshotLoader.Outcome
        do {
            outcome = try SnapshotLoader.load(config: config, previous: nil)
        } catch {
            // Zone problems are printed before the steering problem that follows from them.
            if let loaded = try? ZoneDirectory.load(
                config.zonesDirectory, steered: config.steering.names.map(\.wire), limits: config.zoneLimits)
            {
                for l in loaded { for p in l.problems { problem(p) } }
            }
            problem(error)
            throw ExitCode(1)
        }
        let loaded = outcome.loaded
        var failed = false
        for l in loaded {
            for p in l.problems { problem(p) }
            if l.zone == nil { failed = true }
        }
        if loaded.isEmpty {
            problem("\(config.zonesDirectory):0: no NAME.zone files")
            failed = true
        }
        if failed { throw ExitCode(1) }
        let total = loaded.compactMap(\.zone).reduce(0) { $0 + $1.recordCount }
        var summary = "ok: \(loaded.count) zones, \(total) records"
        if let s = outcome.snapshot.steering {
            let m = s.table.model
            summary +=
                "; \(m.names.count) load-balanced names, \(m.regions.count) regions, \(m.pools.count) pools, \(m.endpoints.count) endpoints"
            if let city = s.table.geo.city, geoSummary == nil {
                summary += "; geo database \(city.path) (\(city.databaseType), \(city.recordCount) records)"
            }
        }
        if let geoSummary { summary += "; " + geoSummary }
        print(summary)
    }
}

struct Explain: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Explain the answer a client gets: location, rules, health, weights, answer, ECS scope, TTL.")

    @OptionGroup var source: SourceOptions

    @Argument(help: "The name queried.")
    var name: String

    @Argument(help: "The query type (A, AAAA, or any other type).")
    var type: String = "A"

    @Option(name: .long, help: "The client: IP (as the query's source address) or IP/LEN (as EDNS Client Subnet).")
    var client: String

    @Flag(name: .long, help: "Print JSON (as the admin API's /v1/explain).")
    var json = false

    func validate() throws { try source.validateConfig() }

    func run() throws {
        do {
            var config = try source.configPath.map(Config.load) ?? Config()
            source.apply(&config)
            let overrides = config.stateFile.flatMap { StateFile.read($0)?.overrides } ?? AdminOverrides()
            let outcome = try SnapshotLoader.load(
                config: config, previous: nil,
                health: { model in
                    var board = HealthBoard(topology: model.health)
                    board.setOverrides(overrides, now: 0)
                    return board.view
                })
            let e = try Explainer.explain(outcome.snapshot, name: name, type: type, client: client)
            if json {
                let enc = JSONEncoder()
                enc.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try enc.encode(e), as: UTF8.self))
            } else {
                print(e.text, terminator: "")
            }
        } catch {
            problem(error)
            throw ExitCode(1)
        }
    }
}

/// A problem or an error, on stderr (what a command prints as its result goes to stdout).
func problem(_ message: Any) {
    FileHandle.standardError.write(Data(terminalSafe("\(message)").utf8 + [0x0A]))
}
