import Anycast
import Foundation
import Health

/// Anycast maintenance from the shared state (set on any POP of a cluster), held until the
/// anycast controller runs, then passed on.
final class AnycastRelay: AnycastSink, @unchecked Sendable {
    let lock = NSLock()
    var controller: AnycastController? = nil
    var pending: [String: Bool?] = [:]

    @discardableResult
    func anycast(proto: String, withdraw: Bool?) -> Bool {
        let a = lock.withLock { () -> AnycastController? in
            if controller == nil { pending[proto] = .some(withdraw) }
            return controller
        }
        return a?.setOverride(proto: proto, withdraw: withdraw) ?? true
    }

    func hasAnycast(proto: String) -> Bool {
        lock.withLock { controller }?.status().prefixes.contains { $0.proto == proto } ?? false
    }

    func attach(_ a: AnycastController) {
        let held = lock.withLock { () -> [String: Bool?] in
            controller = a
            defer { pending = [:] }
            return pending
        }
        for (proto, w) in held { _ = a.setOverride(proto: proto, withdraw: w) }
    }
}
