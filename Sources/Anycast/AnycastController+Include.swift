import CLodestarSys
import Foundation
import Logging
import Settings

/// The include file: the durable mirror of what lodestar wants.
extension AnycastController {
    /// The durable mirror (`lodestar_write_durable`): `configure` and BIRD restarts keep what
    /// lodestar decided, and a crash never leaves a torn file. `allWithdrawn` writes every prefix
    /// withdrawn whatever the routes say (at shutdown, when the controller thread is stuck on BIRD).
    func writeInclude(allWithdrawn: Bool = false) {
        var text = "# Written by lodestar: the anycast state it wants. Include it in bird.conf, and use\n"
        text += "# `disabled LODESTAR_<PROTO>_DOWN;` in each static protocol (and _DRAIN in the export filter).\n"
        for (i, p) in settings.prefixes.enumerated() {
            let d = allWithdrawn ? .withdraw : routes[i].desired
            let why = allWithdrawn ? "lodestar is stopping" : routes[i].reason
            let name = "LODESTAR_" + p.proto.uppercased()
            text += "define \(name)_DOWN = \(d == .withdraw ? 1 : 0);\t# \(p.prefix): \(BirdNames.message(why))\n"
            text += "define \(name)_DRAIN = \(d == .drain ? 1 : 0);\n"
        }
        let rc = Array(text.utf8).withUnsafeBytes {
            lodestar_write_durable(settings.includeFile, $0.baseAddress, $0.count, 0o644)
        }
        if rc != 0 { logger.error("anycast: cannot write \(settings.includeFile): \(String(cString: strerror(-rc)))") }
    }
}
