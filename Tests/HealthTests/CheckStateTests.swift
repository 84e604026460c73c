import Foundation
import Health
import Testing

@Suite("Check state machine, damping and RTT average")
struct CheckStateTests {
    @Test("the first result decides; then rise and fall hysteresis")
    func hysteresis() {
        var s = CheckState()
        #expect(s.record(.failure(reason: "connection refused"), now: 0) == [.wentDown(reason: "connection refused")])
        #expect(s.record(.success(rtt: 0.01), now: 10).isEmpty)  // 1 of rise 2
        #expect(s.record(.success(rtt: 0.01), now: 20) == [.wentUp(reason: "2 checks passed")])
        #expect(s.record(.failure(reason: "HTTP 500"), now: 30).isEmpty)
        #expect(s.record(.failure(reason: "HTTP 500"), now: 40).isEmpty)
        #expect(s.record(.success(rtt: 0.01), now: 50).isEmpty)  // a success resets the failure count
        #expect(s.record(.failure(reason: "timeout after 2 s"), now: 60).isEmpty)
        #expect(s.record(.failure(reason: "timeout after 2 s"), now: 70).isEmpty)
        #expect(s.record(.failure(reason: "timeout after 2 s"), now: 80) == [.wentDown(reason: "timeout after 2 s")])
        #expect(s.up == false && s.flaps == 1)
        var fresh = CheckState()
        #expect(fresh.record(.success(rtt: 0.01), now: 0) == [.wentUp(reason: "first check passed")])
    }

    @Test("damping: a flapping check is held down until its penalty decays, then comes back")
    func damping() {
        var policy = CheckPolicy()
        policy.rise = 1
        policy.fall = 1
        var s = CheckState(policy: policy)
        _ = s.record(.success(rtt: 0.01), now: 0)
        // Three flaps in quick succession: penalty ≈ 955 + 977 + 1000 ≈ 2930 > 2000 → suppressed.
        // (Two give ≈ 1977: just below the threshold.)
        for t in [1.0, 3.0, 5.0] {
            _ = s.record(.failure(reason: "reset"), now: t)
            if t < 5 { _ = s.record(.success(rtt: 0.01), now: t + 1) }
        }
        #expect(s.flaps == 3 && s.isSuppressed(at: 5))
        let held = s.record(.success(rtt: 0.01), now: 6)
        guard case .heldDown(let until, let penalty)? = held.first else {
            Issue.record("expected heldDown, got \(held)")
            return
        }
        #expect(s.up == false)
        // Held until the penalty decays to reuse (750): 60 · log2(p / 750) seconds after the last flap.
        #expect(penalty > 2800 && abs(until - (5 + 60 * log2(s.penalty(at: 5) / 750))) < 1, "\(until)")
        #expect(until > 100)
        #expect(
            s.record(.success(rtt: 0.01), now: 60).first.map { if case .heldDown = $0 { true } else { false } } == true)
        let back = s.record(.success(rtt: 0.01), now: until + 1)
        #expect(back.count == 1 && s.up == true, "\(back)")
    }

    @Test("damping never holds longer than maxHold")
    func maxHold() {
        var policy = CheckPolicy()
        policy.rise = 1
        policy.fall = 1
        policy.maxHold = 30
        policy.halfLife = 3600
        var s = CheckState(policy: policy)
        for t in 0..<4 {
            _ = s.record(.success(rtt: 0.01), now: Double(2 * t))
            _ = s.record(.failure(reason: "reset"), now: Double(2 * t + 1))
        }
        #expect(s.isSuppressed(at: 10) && !s.isSuppressed(at: 40))
        #expect(s.record(.success(rtt: 0.01), now: 40).first == .wentUp(reason: "1 checks passed"))
    }

    @Test("RTT moving average")
    func ewma() {
        var a = RTTAverage(alpha: 0.5)
        #expect(a.value == nil)
        a.add(0.100)
        a.add(0.020)
        #expect(abs(a.value! - 0.060) < 1e-9)
        a.add(0.060)
        #expect(abs(a.value! - 0.060) < 1e-9 && a.samples == 3)
    }
}
