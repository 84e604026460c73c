import CLodestarSys
import Dispatch
import Foundation
package import Logging

/// The systemd notification protocol (`sd_notify(3)`), spoken directly over `NOTIFY_SOCKET`:
/// READY=1 once zones are loaded and the first round of health checks is done, RELOADING=1 and
/// READY=1 around a reload, STOPPING=1, STATUS= lines, and WATCHDOG=1 every half `WatchdogSec`
/// while every UDP receive loop is going round. Without `NOTIFY_SOCKET` every call does nothing.
package final class SystemdNotifier: @unchecked Sendable {
    let socket: String?
    /// Half the watchdog interval systemd asked for (`WATCHDOG_USEC`), if it asked this process.
    package let watchdogInterval: Double?
    let logger: Logger
    var timer: DispatchSourceTimer? = nil

    package init(environment: [String: String] = ProcessInfo.processInfo.environment, logger: Logger) {
        self.logger = logger
        let s = environment["NOTIFY_SOCKET"] ?? ""
        socket = s.isEmpty ? nil : s
        if let text = environment["WATCHDOG_USEC"], let usec = UInt64(text), usec > 0,
            environment["WATCHDOG_PID"].map({ Int32($0) == getpid() }) ?? true
        {
            watchdogInterval = Double(usec) / 2_000_000
        } else {
            watchdogInterval = nil
        }
    }

    /// Sends the lines as one datagram; a failure is logged once per kind, never fatal.
    package func send(_ lines: [String]) {
        guard let socket else { return }
        let message = lines.map { $0.replacingOccurrences(of: "\n", with: " ") }.joined(separator: "\n")
        let r = lodestar_sd_notify(socket, message)
        if r < 0 {
            logger.warning(
                "systemd notification failed",
                metadata: ["socket": "\(socket)", "reason": "\(String(cString: strerror(-r)))"])
        }
    }

    package func ready(_ status: String) { send(["READY=1", "STATUS=\(status)"]) }
    package func reloading() {
        send(["RELOADING=1", "MONOTONIC_USEC=\(lodestar_monotonic_ns() / 1000)", "STATUS=reloading"])
    }
    package func stopping(_ status: String) { send(["STOPPING=1", "STATUS=\(status)"]) }
    package func status(_ status: String) { send(["STATUS=\(status)"]) }

    /// Pings the watchdog every half interval while `alive()` holds; when it does not, the ping is
    /// skipped (and logged), so systemd restarts a server whose receive loops are stuck.
    package func startWatchdog(alive: @escaping @Sendable () -> Bool) {
        guard socket != nil, let interval = watchdogInterval else { return }
        let t = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "lodestar.watchdog"))
        t.schedule(deadline: .now() + interval, repeating: interval, leeway: .milliseconds(50))
        t.setEventHandler { [self] in
            if alive() {
                send(["WATCHDOG=1"])
            } else {
                logger.error("watchdog: a UDP receive loop has not gone round; not telling systemd it is alive")
            }
        }
        t.resume()
        timer = t
    }

    package func stopWatchdog() { timer?.cancel() }
}
