import Foundation
import Health
import Logging
import OriginSupport
import Prober
import Settings
import Steering
import Synchronization
import Testing

/// Collects what a prober reports.
final class Reports: Sendable {
    let changes = Mutex<[EndpointObservation]>([])
    let rtt = Mutex<[[String: Double]]>([])

    /// The latest state reported for `endpoint`.
    func latest(_ endpoint: String) -> EndpointObservation? {
        changes.withLock { $0.last { $0.endpoint == endpoint } }
    }

    /// Waits (bounded) until `endpoint` is reported `up`; returns the seconds waited, nil on timeout.
    func wait(_ endpoint: String, up: Bool?, within limit: Double) -> Double? {
        Poll.seconds(limit: limit) { latest(endpoint).map { $0.up == up } ?? false }
    }
}

@Suite("Prober: schedule, thresholds, combining, against real origins", .serialized)
struct ProberTests {
    static func model(_ endpoints: [(String, [CheckSpec], CheckMode)]) -> SteeringModel {
        var m = SteeringModel()
        m.regions = [Region(name: "r1")]
        for (i, (name, checks, mode)) in endpoints.enumerated() {
            var e = Endpoint(name: name, target: .address([192, 0, 2, UInt8(i + 1)]), pool: 0)
            e.checks = checks
            e.checkMode = mode
            m.endpoints.append(e)
        }
        m.pools = [Pool(name: "p1", region: 0, endpoints: Array(m.endpoints.indices), capacity: 1)]
        return m
    }

    static func check(
        _ kind: CheckSpec.Kind, _ port: Int, interval: Double = 0.2, timeout: Double = 0.15,
        rise: Int = 2, fall: Int = 2
    ) -> CheckSpec {
        var s = CheckSpec(kind: kind, address: "127.0.0.1", port: port)
        s.interval = interval
        s.timeout = timeout
        s.jitter = 0
        s.policy.rise = rise
        s.policy.fall = fall
        s.path = "/health"
        return s
    }

    static func prober(_ reports: Reports) -> Prober {
        var logger = Logger(label: "test")
        logger.logLevel = .error
        return Prober(
            logger: logger, onChange: { c in reports.changes.withLock { $0 += c } },
            onRTT: { r in reports.rtt.withLock { $0.append(r) } })
    }

    @Test(
        "endpoints combine their checks (all / any); changes come within interval × fall and back within interval × rise",
        .timeLimit(.minutes(1)))
    func combine() throws {
        let tcpPort = FreePort.pick()
        let httpPort = FreePort.pick()
        let origins = try Origins(["\(tcpPort)", "\(httpPort)"])
        defer { origins.stop() }
        let checks = [Self.check(.tcp, tcpPort), Self.check(.http, httpPort)]
        let reports = Reports()
        let prober = Self.prober(reports)
        defer { prober.stop() }
        prober.configure(
            topology: Self.model([("both", checks, .all), ("either", checks, .any)]).health, settings: ProberSettings())
        #expect(prober.waitForFirstRound(timeout: 2) == 0)
        #expect(reports.latest("both")?.up == true && reports.latest("either")?.up == true)

        try origins.mode(httpPort, "500")
        let down = reports.wait("both", up: false, within: 3)
        #expect(
            down != nil && down! <= 0.2 * 2 + 0.3, "down after \(String(describing: down)) s; interval 0.2 × fall 2")
        #expect(reports.latest("both")?.reason == "http://127.0.0.1:\(httpPort)/health: HTTP 500")
        #expect(reports.latest("either")?.up == true, "one passing check is enough for `any`")

        try origins.mode(tcpPort, "down")
        try origins.mode(httpPort, "down")
        #expect(reports.wait("either", up: false, within: 3) != nil)
        #expect(reports.latest("either")?.reason.contains("connection refused") == true)

        try origins.mode(tcpPort, "ok")
        try origins.mode(httpPort, "ok")
        let up = reports.wait("both", up: true, within: 3)
        #expect(up != nil && up! <= 0.2 * 2 + 0.3, "up after \(String(describing: up)) s; interval 0.2 × rise 2")
        let status = prober.status()
        #expect(status.checks.count == 4 && status.checks.allSatisfy { $0.rttMs != nil && $0.runs >= 5 })
        #expect(status.checks.contains { $0.failures["http-status"] ?? 0 >= 2 })
        #expect(status.checks.contains { $0.failures["refused"] ?? 0 >= 2 })
    }

    @Test("bounded concurrency and a bounded first round when origins hang", .timeLimit(.minutes(1)))
    func concurrency() throws {
        let port = FreePort.pick()
        let origins = try Origins(["\(port)"])
        defer { origins.stop() }
        try origins.mode(port, "hang")
        let reports = Reports()
        let prober = Self.prober(reports)
        defer { prober.stop() }
        var settings = ProberSettings()
        settings.concurrency = 8
        let eps = (0..<40).map { ("e\($0)", [Self.check(.http, port, interval: 1, timeout: 0.3)], CheckMode.all) }
        let t0 = Date()
        prober.configure(topology: Self.model(eps).health, settings: settings)
        // 40 checks × 0.3 s / 8 at a time = 1.5 s: a 0.5 s bound returns with most still running.
        let left = prober.waitForFirstRound(timeout: 0.5)
        #expect(left > 0 && Date().timeIntervalSince(t0) < 0.8, "\(left) without a result")
        var most = 0
        for _ in 0..<100 {
            most = max(most, prober.status().inFlight)
            usleep(20_000)
        }
        #expect(most == 8, "at most 8 in flight, and the queue keeps 8 busy (saw \(most))")
        let s = prober.status()
        #expect(s.late > 0, "queued checks start late, and are counted")
        #expect(reports.changes.withLock { $0.filter { $0.up == false }.count } == 40, "every endpoint down: timeout")
        #expect(reports.latest("e0")?.reason.hasSuffix("timeout after 0.3 s waiting for the response") == true)
    }
}
