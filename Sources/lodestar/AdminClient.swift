import Foundation
import Glibc
import HTTPClient

/// The admin API as `lodestar ctl` calls it: one request per connection (`HTTPConnection`, every
/// step under a deadline), errors that say what to check.
struct AdminClient {
    var host: String
    var port: Int
    var token: String?
    var timeout: Double = 10
    /// The control socket, when there is one: used instead of host and port.
    var socket: String? = nil

    struct Reply {
        var status: Int
        var body: String
        var json: Any? { try? JSONSerialization.jsonObject(with: Data(body.utf8)) }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Through the control socket at `path` (its file mode decides; no token).
    static func control(_ path: String, timeout: Double) -> AdminClient {
        AdminClient(host: "", port: 0, token: nil, timeout: timeout, socket: path)
    }

    var endpoint: String { socket ?? (host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)") }

    func get(_ path: String) throws -> Reply { try request("GET", path, body: nil) }
    func post(_ path: String, _ object: [String: Any]) throws -> Reply {
        try request("POST", path, body: try JSONSerialization.data(withJSONObject: object))
    }

    func request(_ method: String, _ path: String, body: Data?) throws -> Reply {
        let deadline = Date().addingTimeInterval(timeout)
        let c: HTTPConnection
        do {
            if let socket {
                c = try HTTPConnection(unixPath: socket, deadline: deadline)
            } else {
                c = try HTTPConnection(host: host, port: port, deadline: deadline)
            }
        } catch let f as HTTPConnection.Failure {
            switch f.code {
            case .connect(EACCES), .connect(EPERM):
                throw Failure(
                    description:
                        "cannot connect to the control socket \(endpoint): permission denied (run as root or as a member of the group lodestar runs as)"
                )
            case .connect(ECONNREFUSED), .connect(ENOENT):
                throw Failure(
                    description:
                        "lodestar is not running, or not with its admin API on \(endpoint) (connection refused)")
            default:
                throw Failure(description: "cannot reach the admin API at \(endpoint): \(f)")
            }
        }
        var headers = ["Connection: close"]
        if let token { headers.append("Authorization: Bearer \(token)") }
        if body != nil { headers.append("Content-Type: application/json") }
        do {
            try c.send(method, path, headers: headers, body: body.map(Array.init), deadline: deadline)
            let r = try c.readResponse(deadline: deadline)
            return Reply(status: r.status, body: r.text)
        } catch {
            throw Failure(
                description:
                    "the admin API at \(endpoint): \(error) (\(socket == nil ? "is it lodestar's admin listen address? " : "")a reload can take longer than --timeout)"
            )
        }
    }
}
