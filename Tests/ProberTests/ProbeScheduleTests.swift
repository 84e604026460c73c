import Health
import Prober
import Testing

/// The prober's schedule alone: time and jitter given, actions checked; no sockets, no clock.
@Suite("Probe schedule (pure core)")
struct ProbeScheduleTests {
    static func topology(_ checks: [[CheckSpec]], mode: CheckMode = .all) -> HealthTopology {
        HealthTopology(
            regions: ["r1"], pools: [.init(name: "p1", region: 0, endpoints: Array(checks.indices))],
            endpoints: checks.enumerated().map {
                .init(name: "e\($0.offset)", pool: 0, checks: $0.element, checkMode: mode)
            })
    }

    static func spec(_ port: Int, interval: Double = 10, jitter: Double = 0.1, rise: Int = 2, fall: Int = 2)
        -> CheckSpec
    {
        var s = CheckSpec(kind: .tcp, address: "192.0.2.1", port: port)
        s.interval = interval
        s.jitter = jitter
        s.policy.rise = rise
        s.policy.fall = fall
        return s
    }

    static let ok = ProbeResult(outcome: .success(rtt: 0.01), kind: "ok")
    static let refused = ProbeResult(outcome: .failure(reason: "connection refused"), kind: "refused")

    static func launches(_ a: [ProbeSchedule.Action]) -> [Int] {
        a.compactMap { if case .launch(let i) = $0 { return i } else { return nil } }
    }

    static func arms(_ a: [ProbeSchedule.Action]) -> [Int: Double] {
        var out: [Int: Double] = [:]
        for case .arm(let i, let at) in a { out[i] = at }
        return out
    }

    static func reports(_ a: [ProbeSchedule.Action]) -> [EndpointObservation] {
        a.flatMap { if case .report(let r) = $0 { return r } else { return [] } }
    }

    @Test("new checks are due at once, plus their jitter; each next run on the fixed schedule")
    func schedule() {
        var s = ProbeSchedule()
        let a = s.configure(
            topology: Self.topology([[Self.spec(1)], [Self.spec(2)]]), concurrency: 64, now: 100, jitter: { 0.5 })
        // Due at 100, started within jitter × interval = 1 s: half of it.
        #expect(Self.arms(a) == [0: 100.5, 1: 100.5])
        #expect(s.firstRoundLeft == 2)
        #expect(Self.launches(s.due(0, now: 100.5)) == [0])
        #expect(s.due(0, now: 100.6).isEmpty, "a check in flight is not started twice")
        let done = s.completed(0, result: Self.ok, now: 100.6, jitter: { 0 })
        #expect(Self.arms(done) == [0: 110], "the next run is due one interval after the last was due")
        #expect(Self.reports(done) == [EndpointObservation(endpoint: "e0", up: true, reason: "tcp://192.0.2.1:1: ok")])
        #expect(s.firstRoundLeft == 1)
        _ = s.due(1, now: 101)
        #expect(s.completed(1, result: Self.ok, now: 101, jitter: { 0 }).contains(.firstRoundDone))
        // A check that fell behind its schedule starts again from now.
        _ = s.due(0, now: 130)
        #expect(Self.arms(s.completed(0, result: Self.ok, now: 130.1, jitter: { 0 })) == [0: 130.1])
        #expect(s.late == 1 && s.runs == 3, "the run 20 s after it was due is counted late")
    }

    @Test("at most `concurrency` in flight; the others wait their turn, in order")
    func concurrency() {
        var s = ProbeSchedule()
        _ = s.configure(
            topology: Self.topology((0..<4).map { [Self.spec($0 + 1)] }), concurrency: 2, now: 0, jitter: { 0 })
        let started = (0..<4).flatMap { Self.launches(s.due($0, now: 0)) }
        #expect(started == [0, 1])
        #expect(s.inFlight == 2 && s.waiting == [2, 3])
        let next = s.completed(1, result: Self.ok, now: 0.1, jitter: { 0 })
        #expect(Self.launches(next) == [2])
        #expect(s.inFlight == 2 && s.waiting == [3])
    }

    @Test("rise and fall: down after `fall` failures, up after `rise` successes; only transitions are reported")
    func thresholds() {
        var s = ProbeSchedule()
        _ = s.configure(
            topology: Self.topology([[Self.spec(1, rise: 2, fall: 2)]]), concurrency: 64, now: 0, jitter: { 0 })
        var t = 0.0
        func run(_ r: ProbeResult) -> [EndpointObservation] {
            t += 10
            _ = s.due(0, now: t)
            return Self.reports(s.completed(0, result: r, now: t, jitter: { 0 }))
        }
        #expect(run(Self.ok).map(\.up) == [true], "the first result decides at once")
        #expect(run(Self.refused).isEmpty)
        #expect(run(Self.refused).map(\.up) == [false])
        #expect(run(Self.refused).isEmpty, "the same reason while down is not reported again")
        // One success of the two `rise` asks for: still down, its reason refreshed (reported, not logged).
        #expect(run(Self.ok).map(\.up) == [false])
        #expect(run(Self.ok).map(\.up) == [true])
    }

    @Test(
        "a reload keeps a check whose endpoint and settings are unchanged; new ones are due at once; results of the old generation are not taken"
    )
    func reconfigure() {
        var s = ProbeSchedule()
        _ = s.configure(topology: Self.topology([[Self.spec(1)]]), concurrency: 64, now: 0, jitter: { 0 })
        _ = s.due(0, now: 0)
        _ = s.completed(0, result: Self.ok, now: 0.1, jitter: { 0 })
        let a = s.configure(
            topology: Self.topology([[Self.spec(1)], [Self.spec(2)]]), concurrency: 64, now: 5, jitter: { 0 })
        #expect(Self.arms(a) == [0: 10, 1: 5])
        #expect(s.checks[0].runs == 1 && s.checks[0].state.up == true)
        #expect(s.firstRoundLeft == 1)
        #expect(
            s.completed(0, result: Self.refused, now: 6, jitter: { 0 }).isEmpty, "not in flight in this configuration")
    }

    @Test("the endpoint verdict combines its checks: all, any, and states still unknown")
    func combine() {
        let up = (up: Bool?.some(true), reason: "a: ok")
        let down = (up: Bool?.some(false), reason: "b: refused")
        let unknown = (up: Bool?.none, reason: "not checked yet")
        #expect(EndpointVerdict.combine(mode: .all, states: [up, down]) == (false, "b: refused"))
        #expect(EndpointVerdict.combine(mode: .all, states: [up, up]) == (true, "all 2 checks pass"))
        #expect(EndpointVerdict.combine(mode: .all, states: [up, unknown]).up == nil)
        #expect(EndpointVerdict.combine(mode: .any, states: [down, up]) == (true, "a: ok"))
        #expect(EndpointVerdict.combine(mode: .any, states: [down, down]) == (false, "b: refused; b: refused"))
        #expect(EndpointVerdict.combine(mode: .any, states: [down, unknown]).up == nil)
        #expect(EndpointVerdict.combine(mode: .all, states: []) == (nil, "not checked"))
    }
}
