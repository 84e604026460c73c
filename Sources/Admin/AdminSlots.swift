import NIOCore

/// The admin API's TCP connections: how many, from whom, and which may make room. Used on the
/// admin event loop only (one thread), so it needs no lock.
///
/// 64 idle connections from one client used to fill the API, `/health` and `/ready` included, and
/// the slots were taken before the token was checked. Now: at most `AdminServer.maxPerClient` from
/// one address; when all `maxConnections` are taken, the connection idle the longest (not in the
/// middle of a request) is closed to make room; failing that, `reservedProbes` more connections
/// are let in for the probe paths alone.
final class AdminSlots: @unchecked Sendable {
    /// One connection.
    final class Conn: @unchecked Sendable {
        let client: String
        /// Over the control socket: not counted, never evicted, no token asked.
        let control: Bool
        /// Let in beyond the limit: `/health`, `/ready` and `/metrics` only.
        var probeOnly = false
        /// Between a request's head and its answer.
        var busy = false
        var idleSince: NIODeadline = .now()
        var channel: Channel? = nil

        init(client: String, control: Bool = false) {
            self.client = client
            self.control = control
        }
    }

    var open: [ObjectIdentifier: Conn] = [:]
    var perClient: [String: Int] = [:]

    /// A slot for a new connection from `client`, and a connection to close to make room for it;
    /// nil when there is none.
    func admit(_ client: String) -> (conn: Conn, evicted: Channel?)? {
        guard perClient[client, default: 0] < AdminServer.maxPerClient else { return nil }
        let conn = Conn(client: client)
        var evicted: Channel? = nil
        let general = open.values.filter { !$0.probeOnly }
        if general.count >= AdminServer.maxConnections {
            if let oldest = general.filter({ !$0.busy && $0.channel != nil }).min(by: { $0.idleSince < $1.idleSince }) {
                evicted = oldest.channel
                release(oldest)
            } else if open.count - general.count < AdminServer.reservedProbes {
                conn.probeOnly = true
            } else {
                return nil
            }
        }
        open[ObjectIdentifier(conn)] = conn
        perClient[client, default: 0] += 1
        return (conn, evicted)
    }

    /// Forgets a connection (closed, or evicted); a second call does nothing.
    func release(_ conn: Conn) {
        guard open.removeValue(forKey: ObjectIdentifier(conn)) != nil else { return }
        let n = perClient[conn.client, default: 1] - 1
        perClient[conn.client] = n > 0 ? n : nil
    }
}
