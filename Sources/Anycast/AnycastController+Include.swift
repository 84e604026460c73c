import CLodestarSys
import Foundation
import Logging
import NIOCore
import NIOPosix
import Prober
import Steering

/// The include file: the durable mirror of what lodestar wants.
extension AnycastController {
    /// The durable mirror, written atomically: `configure` and BIRD restarts keep what lodestar decided.
    func writeInclude() {
        var text = "# Written by lodestar: the anycast state it wants. Include it in bird.conf, and use\n"
        text += "# `disabled LODESTAR_<PROTO>_DOWN;` in each static protocol (and _DRAIN in the export filter).\n"
        for (i, p) in settings.prefixes.enumerated() {
            let d = routes[i].desired
            let name = "LODESTAR_" + p.proto.uppercased()
            text += "define \(name)_DOWN = \(d == .withdraw ? 1 : 0);\t# \(p.prefix): \(BirdNames.message(routes[i].reason))\n"
            text += "define \(name)_DRAIN = \(d == .drain ? 1 : 0);\n"
        }
        let tmp = settings.includeFile + ".tmp"
        guard FileManager.default.createFile(atPath: tmp, contents: Data(text.utf8)), rename(tmp, settings.includeFile) == 0 else {
            logger.error("anycast: cannot write \(settings.includeFile): \(String(cString: strerror(errno)))")
            return
        }
    }
}
