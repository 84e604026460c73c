import Foundation
import Synchronization

/// A port free on every address for both UDP and TCP right now (the kernel picks it), and never handed out
/// before in this process (tests running in parallel would otherwise race for a port the kernel
/// offers twice).
public enum FreePort {
    static let given = Mutex<Set<Int>>([])

    public static func pick() -> Int {
        for _ in 0..<50 {
            let tcp = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(tcp) }
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = 0
            // The wildcard, not 127.0.0.1: a port is only handed out if no socket on any address
            // holds it. BIRD listens on 0.0.0.0 unless told otherwise, and its bind fails on a
            // TIME_WAIT left on 127.0.0.2:port by an earlier BIRD's outgoing session, which a
            // bind to 127.0.0.1 does not see. Nothing listens here; the socket is closed at once.
            addr.sin_addr.s_addr = INADDR_ANY
            var len = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(tcp, $0, len) == 0 && getsockname(tcp, $0, &len) == 0
                }
            }
            guard bound else { continue }
            let port = Int(UInt16(bigEndian: addr.sin_port))
            // The same port must be free for UDP too.
            let udp = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            defer { close(udp) }
            let udpOK = withUnsafeMutablePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(udp, $0, len) == 0 }
            }
            if udpOK && given.withLock({ $0.insert(port).inserted }) { return port }
        }
        return 20000 + Int.random(in: 0..<20000)
    }
}
