import CLodestarSys
package import Logging
import Synchronization

/// Log lines about what clients do to the listeners (a PROXY header dropped, a connection refused,
/// an accept that failed), at most one a reason every `interval` seconds, with how many were left
/// unsaid since the last: a flood of bad packets must not become a flood of log lines.
///
/// Cheap when nothing is logged (two atomics), so it may sit on a drop path of the UDP loop.
package final class LogThrottle: Sendable {
    /// Why a line is logged; each reason has its own clock.
    package enum Reason: Int, CaseIterable, Sendable {
        case proxyMissing, proxyNotAllowed, tcpRefused, tcpAccept
    }

    /// Seconds between two lines of one reason.
    package static let interval: UInt64 = 10
    let logger: Logger
    /// When a reason was last logged, and how many of it went unsaid since.
    private final class Slot: Sendable {
        let last = Atomic<UInt64>(0)
        let unsaid = Atomic<UInt64>(0)
    }
    private let slots: [Slot]

    package init(logger: Logger) {
        self.logger = logger
        slots = Reason.allCases.map { _ in Slot() }
    }

    /// A PROXY header missing from an allowed peer, or sent by a peer not allowed to, and what was
    /// done about it ("UDP datagram … dropped", "TCP connection … closed").
    package func proxyDrop(_ peer: String, allowed: Bool, tcp: Bool) {
        let what = tcp ? "TCP connection from \(peer) closed" : "UDP datagram from \(peer) dropped"
        if allowed {
            warn(
                .proxyMissing, peer: peer,
                "PROXY: \(what): no valid PROXY v2 header (the peer is in proxy-protocol.allow)")
        } else {
            warn(.proxyNotAllowed, peer: peer, "PROXY: \(what): a PROXY header from a peer not in proxy-protocol.allow")
        }
    }

    /// Logs `message()` as a warning unless a line of this reason went out in the last `interval`
    /// seconds (then it is only counted, and the next line says how many were left unsaid).
    package func warn(_ reason: Reason, peer: String, _ message: @autoclosure () -> String) {
        let now = lodestar_monotonic_ns()
        let slot = slots[reason.rawValue]
        let prev = slot.last.load(ordering: .relaxed)
        guard prev == 0 || now &- prev >= Self.interval * 1_000_000_000,
            slot.last.compareExchange(expected: prev, desired: now, ordering: .relaxed).exchanged
        else {
            slot.unsaid.wrappingAdd(1, ordering: .relaxed)
            return
        }
        let skipped = slot.unsaid.exchange(0, ordering: .relaxed)
        let more =
            skipped > 0 ? " (\(skipped) more since the last such line; at most one every \(Self.interval) s)" : ""
        logger.warning("\(message())\(more)", metadata: ["peer": "\(peer)", "reason": "\(reason)"])
    }
}
