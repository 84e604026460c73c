import Admin
package import Anycast
import CLodestarSys
package import Cluster
package import Config
import DNSWire
import Dispatch
package import Engine
import Foundation
import Geo
import HTTPClient
package import Health
import Listeners
package import Logging
package import Prober
import Settings
import Steering
import Synchronization
import Zones

/// Runs the listeners over a snapshot store; reloads on SIGHUP, stops on SIGTERM/SIGINT.
package final class LodestarServer: AdminControl, @unchecked Sendable {
    let logger: Logger
    let configPath: String?
    /// The command line's changes to the config file (`--zones`, `--listen`), applied on every load.
    let commandLine: (inout Config) -> Void
    package let store: SnapshotStore
    /// The configuration in force: the one the running snapshot was loaded from.
    let running: Mutex<Config>
    let udp: UDPServer
    let tcp: TCPServer
    let reloadQueue = DispatchQueue(label: "lodestar.reload")
    let reloading = NSLock()
    var signalSources: [DispatchSourceSignal] = []
    package let health: HealthController
    var admin: AdminServer? = nil
    /// Checks the endpoints' health; reports to `health`.
    package let prober: Prober
    /// Anycast route health through BIRD, when configured.
    package private(set) var anycast: AnycastController? = nil
    /// Where this POP's verdicts, overrides, external input and anycast maintenance go: this POP
    /// alone, or the cluster on etcd (chosen once, at start).
    package let shared: SharedState
    /// The cluster, when configured (for its status).
    let cluster: ClusterController?
    /// Anycast maintenance set through the shared state, held until the anycast controller runs.
    let anycastRelay = AnycastRelay()
    /// Endpoint health resumed from the state file at start (empty: run a first round instead).
    let resumed: [String: (up: Bool, reason: String)]
    /// Reloads done and failed, for /metrics, and when the last one succeeded (Unix time).
    let reloads = Mutex<(ok: Int, failed: Int)>((0, 0))
    let lastReload = Mutex<Double>(Date().timeIntervalSince1970)
    /// Per zone, whether its file loaded cleanly at the last load (for `lodestar_zone_loaded`).
    let zoneLoad = Mutex<[String: Bool]>([:])
    /// Whether to take traffic (`/ready`), and why not: false until the zones are loaded and the
    /// first round of checks is done, and again while stopping.
    let ready = Mutex<(ready: Bool, reason: String)>((false, "starting: first round of health checks"))
    /// systemd's notification socket and watchdog.
    package let systemd: SystemdNotifier

    /// Loads config and zones; throws when the config is unusable. Bad zones are logged and skipped.
    package init(configPath: String?, overrides: @escaping (inout Config) -> Void, logger: Logger) throws {
        self.logger = logger
        self.configPath = configPath
        self.commandLine = overrides
        systemd = SystemdNotifier(logger: logger)
        Memory.configure()
        let config = try Self.loadConfig(configPath, overrides)
        let saved = HealthController.loadOverrides(config.stateFile, logger: logger)
        nonisolated(unsafe) var board: HealthBoard? = nil
        let outcome = try SnapshotLoader.load(
            config: config, previous: nil,
            health: { model in
                var b = HealthBoard(topology: model.health)
                b.setOverrides(saved, now: lodestar_monotonic())
                board = b
                return b.view
            })
        Self.report(outcome, logger: logger)
        zoneLoad.withLock { $0 = Self.loads(outcome) }
        store = SnapshotStore(outcome.snapshot)
        Memory.release()  // what the compile used and freed (a database, its decoded records)
        running = Mutex(config)
        health = HealthController(store: store, stateFile: config.stateFile, logger: logger)
        if let board { health.board = board } else { health.board.setOverrides(saved, now: lodestar_monotonic()) }
        if !saved.isEmptyOverrides, let f = config.stateFile { logger.info("admin overrides restored from \(f)") }
        let health = health
        let relay = anycastRelay
        cluster = config.cluster.map { ClusterController(settings: $0, logger: logger, health: health, anycast: relay) }
        let shared: SharedState = cluster ?? LocalState(health: health, anycast: relay)
        self.shared = shared
        prober = Prober(logger: logger, onChange: { shared.verdicts($0) }, onRTT: { shared.liveRTT($0) })
        health.configureExternal(config.prober)
        resumed = HealthController.resumableHealth(config.stateFile, maxAge: config.prober.resumeMaxAge, logger: logger)
        if !resumed.isEmpty {
            shared.verdicts(
                resumed.map {
                    EndpointObservation(endpoint: $0.key, up: $0.value.up, reason: $0.value.reason + " (resumed)")
                })
            logger.info("health of \(resumed.count) endpoints resumed from \(config.stateFile ?? "")")
        }
        udp = UDPServer(store: store, workers: config.udpWorkers, logger: logger)
        let budget = DescriptorBudget(config: config, logger: logger)
        tcp = TCPServer(store: store, logger: logger, descriptorCap: budget.tcpConnections)
    }

    static func loadConfig(_ path: String?, _ overrides: (inout Config) -> Void) throws -> Config {
        var config = try path.map(Config.load) ?? Config()
        if let path { try checkTLS(config, path: path) }
        overrides(&config)
        return config
    }

    /// Loads the etcd TLS certificates and key the config names (the config checked only that
    /// they are PEM files): a bad one is an error of the config's `tls` line, not of every connection.
    package static func checkTLS(_ config: Config, path: String) throws {
        guard let tls = config.cluster?.tls, tls.caFile != nil || tls.certFile != nil else { return }
        do { _ = try tls.validate() } catch {
            throw ConfigError(file: path, line: config.clusterTLSLine, message: "etcd TLS: \(error)")
        }
    }

    /// Per zone file loaded, whether it loaded without errors.
    static func loads(_ outcome: SnapshotLoader.Outcome) -> [String: Bool] {
        Dictionary(outcome.loaded.map { ($0.origin, $0.zone != nil) }, uniquingKeysWith: { a, b in a && b })
    }

    static func report(_ outcome: SnapshotLoader.Outcome, logger: Logger) {
        for p in outcome.problems {
            let fields: Logger.Metadata = ["file": "\(p.file)", "line": "\(p.line)", "reason": "\(p.message)"]
            if p.isWarning { logger.warning("\(p)", metadata: fields) } else { logger.error("\(p)", metadata: fields) }
        }
        for l in outcome.loaded {
            if let z = l.zone {
                logger.info(
                    "zone \(l.origin) loaded: \(z.recordCount) records, serial \(z.serial), parse \(String(format: "%.3f", l.parseSeconds)) s, build \(String(format: "%.3f", l.buildSeconds)) s",
                    metadata: ["zone": "\(l.origin)", "serial": "\(z.serial)"])
            } else if outcome.keptPrevious.contains(l.origin) {
                logger.error(
                    "zone \(l.origin) not reloaded: still serving the previous version",
                    metadata: ["zone": "\(l.origin)"])
            } else {
                logger.error("zone \(l.origin) not served: it has errors", metadata: ["zone": "\(l.origin)"])
            }
        }
        if let geo = outcome.geoReport { logger.info("geo: \(geo)") }
    }

    /// Starts the prober, and when no recent health was resumed, waits (bounded) for its first
    /// round, so the first answers already avoid dead origins.
    func startProber(_ config: Config) {
        let checks = config.steering.endpoints.reduce(0) { $0 + $1.checks.count }
        prober.configure(topology: config.steering.health, settings: config.prober, resume: resumed)
        guard checks > 0 else { return }
        if resumed.isEmpty {
            let t0 = lodestar_monotonic()
            let left = prober.waitForFirstRound(timeout: config.prober.coldStartTimeout)
            let rest = left > 0 ? "; \(left) still running count as not checked (up)" : ""
            logger.info(
                "first round of \(checks) health checks done in \(String(format: "%.2f", lodestar_monotonic() - t0)) s\(rest)"
            )
        } else {
            logger.info("\(checks) health checks started from the resumed state")
        }
    }

    /// Opens every socket, drops privileges, runs the first round of checks, then answers.
    package func start() throws {
        let config = running.withLock { $0 }
        let target = try Privileges.target(config)
        var addresses = try config.listen.map { text -> ListenAddress in
            guard let a = ListenAddress.parse(text) else {
                throw ServerError("listen address \"\(text)\" is not ADDR:PORT")
            }
            return a
        }
        if config.listenIsDefault {
            addresses = addresses.filter { a in
                do {
                    close(try UDPServer.bind(a))
                    return true
                } catch {
                    logger.warning("skipping default address \(a): \(error)")
                    return false
                }
            }
        }
        // Every socket is opened while privileged (port 53). The first load (config, zones,
        // databases) came before, in `init`: as root when started as root (SECURITY.md, known gap).
        try udp.open(addresses)
        try tcp.open(addresses)
        var adminAddress: ListenAddress? = nil
        var adminToken: String? = nil
        if config.adminListen != nil || config.adminSocket != nil {
            adminToken = try config.adminTokenFile.map(AdminServer.readToken)
            let server = AdminServer(server: self, token: adminToken, logger: logger)
            if let a = config.adminListen {
                guard let address = ListenAddress.parse(a) else {
                    throw ServerError("admin listen address \(a) is not ADDR:PORT")
                }
                try server.open(address)
                adminAddress = address
            }
            if let path = config.adminSocket {
                // Owned by the user and group the server runs as, so that it can be reached by
                // them (and root) alone, and removed at stop.
                try server.openControl(
                    path, uid: target.map { Int32(bitPattern: $0.uid) } ?? -1,
                    gid: target.map { Int32(bitPattern: $0.gid) } ?? -1)
            }
            admin = server
        }
        try Privileges.drop(to: target, config: config, logger: logger)
        shared.start()
        if let admin {
            // Up before the first round of checks: /health answers, /ready says 503 until then.
            try admin.start()
            if let adminAddress {
                logger.info(
                    "admin API and /metrics on http://\(adminAddress)\(adminToken == nil ? " (no token: loopback only, read-only)" : "")"
                )
            }
            if let path = config.adminSocket { logger.info("control socket \(path) (lodestar ctl)") }
        }
        systemd.status("first round of health checks")
        startProber(config)
        udp.start()
        try tcp.start()
        logger.info("serving on \(addresses.map(\.description).joined(separator: ", ")) (UDP and TCP)")
        if var a = config.anycast {
            // The self-check queries this server: by default on its first listen address.
            if a.selfCheck.address.isEmpty || a.selfCheck.port == 0, let first = addresses.first {
                if a.selfCheck.address.isEmpty {
                    a.selfCheck.address =
                        first.host == "0.0.0.0" ? "127.0.0.1" : (first.host == "::" ? "::1" : first.host)
                }
                if a.selfCheck.port == 0 { a.selfCheck.port = first.port }
            }
            let store = store
            let controller = AnycastController(
                settings: a, logger: logger,
                healthyPools: {
                    guard let rt = store.current.steering else { return ([], []) }
                    let m = rt.table.model
                    var pools = Set<String>()
                    var regions = Set<String>()
                    for (i, p) in m.pools.enumerated() where rt.health.pools[i].passing {
                        pools.insert(p.name)
                        regions.insert(m.regions[p.region].name)
                    }
                    return (pools, regions)
                })
            controller.start()
            anycast = controller
            anycastRelay.attach(controller)
            logger.info(
                "anycast: \(a.prefixes.count) prefixes through BIRD at \(a.socket); self-check \(a.selfCheck.target)")
        }
        ready.withLock { $0 = (true, "ready") }
        let udp = udp
        systemd.startWatchdog { udp.loopsAlive() }
        systemd.ready(summary())
    }

    /// One line for systemd's STATUS and `lodestar ctl status`.
    func summary() -> String {
        let s = store.current
        return "serving \(s.zones.zones.count) zones, generation \(s.generation)"
    }

    /// Re-reads config and zones; on success swaps the snapshot, on failure keeps the old one.
    /// Reloads run one at a time (SIGHUP and the admin API together): the one that reads the
    /// config file last installs it, so the newest file always ends up in force.
    @discardableResult
    package func reload(force: Bool = false) -> Result<Int, Error> {
        reloading.withLock { reloadOnce(force: force) }
    }

    func reloadOnce(force: Bool) -> Result<Int, Error> {
        systemd.reloading()
        do {
            let config = try Self.loadConfig(configPath, commandLine)
            if !force { try Self.refuseEmptying(config, current: store.current) }
            let running = self.running.withLock { $0 }
            if config.listen != running.listen || config.udpWorkers != running.udpWorkers {
                logger.warning(
                    "listen addresses and udp-workers change only on restart; still serving on \(running.listen)")
            }
            if config.adminListen != running.adminListen || config.adminTokenFile != running.adminTokenFile
                || config.adminSocket != running.adminSocket
            {
                logger.warning("the admin listen address, control socket and token change only on restart")
            }
            if config.anycast != running.anycast {
                logger.warning("anycast settings change only on restart; the running ones stay in force")
            }
            if config.cluster != running.cluster {
                logger.warning("cluster settings change only on restart; the running ones stay in force")
            }
            // Health and admin changes wait while the new snapshot is built, so none is lost.
            let generation = try health.withLock {
                let fileChanged = config.stateFile != health.stateFile
                health.stateFile = config.stateFile
                let saved = fileChanged ? HealthController.loadOverrides(config.stateFile, logger: logger) : nil
                let outcome = try SnapshotLoader.load(
                    config: config, previous: store.current,
                    health: { model in
                        self.health.adopt(model, overrides: saved)
                    })
                Self.report(outcome, logger: logger)
                zoneLoad.withLock { $0 = Self.loads(outcome) }
                store.replace(outcome.snapshot)
                self.running.withLock { $0 = config }
                return outcome.snapshot.generation
            }
            // What the compile freed now, and the previous snapshot once every worker has let go of
            // it (an idle UDP worker does at its next wake-up).
            Memory.release()
            DispatchQueue.global().asyncAfter(deadline: .now() + 2) { Memory.release() }
            prober.configure(topology: config.steering.health, settings: config.prober)
            health.configureExternal(config.prober)
            reloads.withLock { $0.ok += 1 }
            lastReload.withLock { $0 = Date().timeIntervalSince1970 }
            logger.info("reloaded: generation \(generation), \(store.current.zones.zones.count) zones")
            systemd.ready(summary())
            return .success(generation)
        } catch {
            reloads.withLock { $0.failed += 1 }
            logger.error("reload failed, still serving the previous snapshot: \(error)")
            systemd.ready("\(summary()); last reload failed: \(error)")
            return .failure(error)
        }
    }

    /// A config that would take away every load-balanced name, or every zone, of the running
    /// server is almost always a file written half or in two steps: refused unless forced.
    static func refuseEmptying(_ config: Config, current: Snapshot) throws {
        let names = current.steering?.table.model.names.count ?? 0
        if names > 0 && config.steering.names.isEmpty {
            throw ServerError(
                """
                the new config has no load-balanced names (\(names) are served now): refused as a half-written file; \
                `lodestar ctl reload --force` applies it
                """)
        }
        let zones = current.zones.zones.count
        let files =
            (try? FileManager.default.contentsOfDirectory(atPath: config.zonesDirectory))?
            .filter { ZoneDirectory.origin(forFile: $0) != nil }.count ?? 0
        if zones > 0 && files == 0 {
            throw ServerError(
                """
                \(config.zonesDirectory) has no NAME.zone files (\(zones) zones are served now): refused; \
                `lodestar ctl reload --force` applies it
                """)
        }
    }

    /// SIGHUP caught from the start of `serve`: its default action ends the process, and a load
    /// takes seconds with large zones or databases (a SIGHUP 0.3 s after start killed the server,
    /// with exit 129, which systemd does not restart). One that came while loading is applied
    /// once the server runs (`runUntilSignalled`).
    package final class EarlyHangUps: @unchecked Sendable {
        let seen = Atomic<Bool>(false)
        let source: DispatchSourceSignal

        package init() {
            signal(SIGHUP, SIG_IGN)
            source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
            source.setEventHandler { [weak self] in self?.seen.store(true, ordering: .relaxed) }
            source.resume()
        }
    }

    /// Blocks until SIGTERM or SIGINT, reloading on SIGHUP (and once at once for one that came
    /// while starting).
    package func runUntilSignalled(early: EarlyHangUps? = nil) {
        let done = DispatchSemaphore(value: 0)
        for sig in [SIGHUP, SIGTERM, SIGINT] { signal(sig, SIG_IGN) }
        let hup = DispatchSource.makeSignalSource(signal: SIGHUP, queue: reloadQueue)
        hup.setEventHandler { [self] in
            logger.info("SIGHUP: reloading")
            reload()
        }
        hup.resume()
        if let early {
            early.source.cancel()
            if early.seen.load(ordering: .relaxed) {
                reloadQueue.async { [self] in
                    logger.info("SIGHUP while starting: reloading")
                    reload()
                }
            }
        }
        for sig in [SIGTERM, SIGINT] {
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler { done.signal() }
            s.resume()
            signalSources.append(s)
        }
        signalSources.append(hup)
        done.wait()
        ready.withLock { $0 = (false, "stopping") }
        systemd.stopping("stopping")
        systemd.stopWatchdog()
        if let anycast {
            // Withdraw first, keep answering while the routes move away, then stop.
            let delay = running.withLock { $0.anycast?.shutdownDelay ?? 0 }
            logger.info("stopping: withdrawing the anycast prefixes, answering for \(seconds(delay)) more")
            anycast.withdrawAndStop()
            usleep(UInt32(delay * 1_000_000))
        }
        logger.info("stopping")
        stop()
    }

    // AdminControl
    package var reloadCounts: (ok: Int, failed: Int) { reloads.withLock { $0 } }
    package var lastReloadTime: Double { lastReload.withLock { $0 } }
    package var zoneLoads: [String: Bool] { zoneLoad.withLock { $0 } }
    package var readiness: (ready: Bool, reason: String) { ready.withLock { $0 } }
    package var overrides: AdminOverrides { health.overrides }
    package func flushState() { health.flushState() }
    package var externalInputs: [String: ExternalInput] { health.externalInputs }
    package var externalStaleAfter: Double { running.withLock { $0.prober.externalStaleAfter } }
    package var clusterStatus: ClusterController.Status? { cluster?.status() }

    package func stop() {
        prober.stop()
        shared.stop()
        health.stopTicker()
        if let anycast, anycast.isRunning { anycast.withdrawAndStop() }
        health.withLock { health.persistLocked() }
        health.flushState()
        admin?.stop()
        udp.stop()
        tcp.stop()
    }
}
