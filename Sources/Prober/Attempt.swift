import Foundation
import Health
import NIOCore

/// One probe in flight; loop-confined. `finish` is idempotent: the first result wins, the channel
/// is closed and the deadline cancelled.
final class Attempt: @unchecked Sendable {
    let loop: EventLoop
    let spec: CheckSpec
    let promise: EventLoopPromise<ProbeResult>
    let started = NIODeadline.now()
    var deadline: Scheduled<Void>? = nil
    var channel: Channel? = nil
    var phase = "connecting"
    /// The first octets the origin sent (HTTP): shown when they are not HTTP at all.
    var firstBytes: [UInt8] = []
    var done = false
    var certDaysLeft: Double? = nil
    var certExpiry: Double? = nil

    init(loop: EventLoop, spec: CheckSpec) {
        self.loop = loop
        self.spec = spec
        self.promise = loop.makePromise()
    }

    var elapsed: Double { Double((NIODeadline.now() - started).nanoseconds) / 1e9 }

    func finish(_ r: ProbeResult) {
        guard !done else { return }
        done = true
        deadline?.cancel()
        channel?.close(promise: nil)
        var r = r
        if r.certDaysLeft == nil { r.certDaysLeft = certDaysLeft }
        if r.certExpiry == nil { r.certExpiry = certExpiry }
        promise.succeed(r)
    }
}
