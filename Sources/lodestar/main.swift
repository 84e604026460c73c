import ArgumentParser
import Foundation
import Logging
import Server
import Zones

/// The `lodestar` command line.
@main
struct Lodestar: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lodestar",
        abstract: "A GSLB that is the authoritative nameserver of its zones.",
        subcommands: [Serve.self, Check.self],
        defaultSubcommand: Serve.self
    )
}

/// Options shared by every subcommand that reads config and zones.
struct SourceOptions: ParsableArguments {
    @Option(name: .long, help: "Config file (YAML). Default: lodestar.yaml in the current folder, if present.")
    var config: String?

    @Option(name: .long, help: "Folder of NAME.zone files (overrides the config).")
    var zones: String?

    /// The config path to use: explicit, or ./lodestar.yaml when it exists.
    var configPath: String? {
        if let config { return config }
        return FileManager.default.fileExists(atPath: "lodestar.yaml") ? "lodestar.yaml" : nil
    }

    func validateConfig() throws {
        if let config, !FileManager.default.isReadableFile(atPath: config) {
            throw ValidationError("config file \(config) cannot be read")
        }
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

    @Option(name: .long, help: "ADDR:PORT or [ADDR6]:PORT to listen on, UDP and TCP; repeatable (overrides the config).")
    var listen: [String] = []

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: String = "info"

    func validate() throws {
        try source.validateConfig()
        for l in listen where ListenAddress.parse(l) == nil {
            throw ValidationError("--listen \(l) is not ADDR:PORT or [ADDR6]:PORT")
        }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown log level \(logLevel)") }
    }

    func run() throws {
        var logger = Logger(label: "lodestar") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        let zones = source.zones
        let listen = listen
        let server: LodestarServer
        do {
            server = try LodestarServer(configPath: source.configPath, overrides: { config in
                if let zones { config.zonesDirectory = zones }
                if !listen.isEmpty { config.listen = listen }
            }, logger: logger)
            try server.start()
        } catch {
            logger.critical("\(error)")
            throw ExitCode(2)
        }
        server.runUntilSignalled()
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check config and zones; print every problem as file:line: message; exit 1 on any error.")

    @OptionGroup var source: SourceOptions

    func validate() throws { try source.validateConfig() }

    func run() throws {
        var config: Config
        do {
            config = try source.configPath.map(Config.load) ?? Config()
        } catch {
            print("\(error)")
            throw ExitCode(1)
        }
        if let zones = source.zones { config.zonesDirectory = zones }
        let loaded: [ZoneDirectory.Loaded]
        do {
            loaded = try ZoneDirectory.load(config.zonesDirectory)
        } catch {
            print("\(error)")
            throw ExitCode(1)
        }
        var failed = false
        for l in loaded {
            for p in l.problems { print(p) }
            if l.zone == nil { failed = true }
        }
        if loaded.isEmpty {
            print("\(config.zonesDirectory):0: no NAME.zone files")
            failed = true
        }
        if failed { throw ExitCode(1) }
        let total = loaded.compactMap(\.zone).reduce(0) { $0 + $1.recordCount }
        print("ok: \(loaded.count) zones, \(total) records")
    }
}
