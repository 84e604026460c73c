import Admin
import ArgumentParser
import Config
import DNSWire
import Foundation

/// `lodestar ctl`: drives a running server through its admin API (as `knotc` and `gdnsdctl` do),
/// with the address and token read from the same config file.
struct Ctl: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Control a running server through its admin API (address and token from the config file).",
        discussion: """
            Exit codes: 0 done; 1 the server refused the request, or is not running or not reachable; \\
            64 a usage error.
            """,
        subcommands: [
            Status.self, Reload.self, State.self, Drain.self, Undrain.self, Weight.self, ExplainName.self, Anycast.self
        ]
    )

    /// Where the admin API is: the config's `admin.listen` and `admin.token-file`, or flags.
    struct Connection: ParsableArguments {
        @Option(
            name: .long,
            help:
                "Config file (YAML) whose admin section names the API. Default: lodestar.yaml here, else /etc/lodestar/lodestar.yaml."
        )
        var config: String?

        @Option(
            name: .long,
            help: "ADDR:PORT of the admin API's TCP listener (overrides the config; changes need its token).")
        var admin: String?

        @Option(
            name: .long,
            help: "The control socket (overrides admin.socket of the config); used before the TCP listener.")
        var socket: String?

        @Option(name: .long, help: "File holding the admin token (overrides the config).")
        var tokenFile: String?

        @Option(name: .long, help: "Seconds to wait for an answer.")
        var timeout: Double = 60

        func client() throws -> AdminClient {
            if let socket { return .control(socket, timeout: timeout) }
            var listen = admin
            var tokenPath = tokenFile
            if listen == nil || tokenPath == nil {
                let path =
                    config
                    ?? ["lodestar.yaml", "/etc/lodestar/lodestar.yaml"].first {
                        FileManager.default.fileExists(atPath: $0)
                    }
                if let path {
                    let c: Config
                    do { c = try Config.load(path) } catch { throw CtlError("\(error)") }
                    // The control socket first (its permissions decide), unless --admin was given.
                    if admin == nil, let s = c.adminSocket {
                        return .control(s, timeout: timeout)
                    }
                    if listen == nil { listen = c.adminListen }
                    if tokenPath == nil { tokenPath = c.adminTokenFile }
                    if listen == nil {
                        throw CtlError(
                            "\(path): no admin.socket or admin.listen: the server has no admin API to talk to")
                    }
                } else if listen == nil {
                    throw CtlError(
                        "no config file (lodestar.yaml here or /etc/lodestar/lodestar.yaml): give --config or --admin")
                }
            }
            guard let text = listen, let a = ListenAddress.parse(text) else {
                throw CtlError("admin address \(listen ?? "") is not ADDR:PORT")
            }
            let host = a.host == "0.0.0.0" ? "127.0.0.1" : (a.host == "::" ? "::1" : a.host)
            var token: String? = nil
            if let tokenPath {
                do { token = try AdminServer.readToken(tokenPath) } catch { throw CtlError("\(error)") }
            }
            return AdminClient(host: host, port: a.port, token: token, timeout: timeout)
        }
    }

    struct CtlError: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    /// Runs `body`; a failure is printed on stderr as `lodestar ctl: …` and exits 1.
    static func run(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let e as ExitCode {
            throw e
        } catch {
            problem("lodestar ctl: \(error)")
            throw ExitCode(1)
        }
    }

    /// The reply's JSON object, or the server's error message as a failure.
    static func object(_ r: AdminClient.Reply) throws -> [String: Any] {
        let o = r.json as? [String: Any]
        guard (200..<300).contains(r.status) else {
            throw CtlError(
                (o?["error"] as? String).map { "\($0) (HTTP \(r.status))" } ?? "HTTP \(r.status): \(r.body.prefix(200))"
            )
        }
        guard let o else { throw CtlError("the admin API answered without a JSON object") }
        return o
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Version, readiness, zones and their serials, reloads.")
        @OptionGroup var connection: Connection
        @Flag(name: .long, help: "Print the JSON as the API sends it.") var json = false

        func run() throws {
            try Ctl.run {
                let c = try connection.client()
                let r = try c.get("/v1/status")
                let o = try Ctl.object(r)
                if json {
                    print(r.body, terminator: "")
                    return
                }
                let ready = (o["ready"] as? Bool) == true
                print(
                    "lodestar \(o["version"] ?? "?") (pid \(o["pid"] ?? "?")) at \(c.endpoint): \(ready ? "ready" : "not ready: \(o["reason"] ?? "")")"
                )
                print(
                    "generation \(o["generation"] ?? "?"); reloads \(o["reloadsOk"] ?? 0) ok, \(o["reloadsFailed"] ?? 0) failed"
                )
                print(
                    "load-balanced names \(o["loadBalancedNames"] ?? 0); endpoints \(o["endpointsUp"] ?? 0) up of \(o["endpoints"] ?? 0); anycast \((o["anycast"] as? Bool) == true ? "on" : "off")"
                )
                let zones = (o["zones"] as? [[String: Any]]) ?? []
                Table(
                    ["ZONE", "SERIAL", "RECORDS", "LOADED"],
                    zones.map { z in
                        [
                            z["name"] as? String ?? "", (z["serial"] as? NSNumber)?.stringValue ?? "-",
                            (z["records"] as? NSNumber)?.stringValue ?? "-",
                            (z["loaded"] as? Bool) == true ? "yes" : "NO (errors; see the log)"
                        ]
                    }
                ).print()
            }
        }
    }

    struct Reload: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Reload config and zones (as SIGHUP); exit 1 if the reload failed.")
        @OptionGroup var connection: Connection
        @Flag(
            name: .long, help: "Apply a config that removes every load-balanced name or every zone (refused otherwise)."
        )
        var force = false

        func run() throws {
            try Ctl.run {
                let r = try connection.client().post(force ? "/v1/reload?force=true" : "/v1/reload", [:])
                let o = r.json as? [String: Any]
                if r.status == 200, o?["result"] as? String == "reloaded" {
                    print("reloaded: generation \(o?["generation"] ?? "?")")
                    return
                }
                throw CtlError("reload failed, the previous config and zones stay: \(o?["error"] ?? r.body)")
            }
        }
    }

    struct State: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Regions, pools and endpoints: health, why, weights, overrides.")
        @OptionGroup var connection: Connection
        @Flag(name: .long, help: "Print the JSON as the API sends it.") var json = false

        func run() throws {
            try Ctl.run {
                let r = try connection.client().get("/v1/state")
                let o = try Ctl.object(r)
                if json {
                    print(r.body, terminator: "")
                    return
                }
                let overrides = o["overrides"] as? [String: [String: [String: Any]]] ?? [:]
                func override(_ kind: String, _ name: String) -> String {
                    guard let ov = overrides[kind]?[name] else { return "" }
                    return [ov["state"].map { "\($0)" }, ov["weight"].map { "weight \($0)" }].compactMap { $0 }.joined(
                        separator: ", ")
                }
                let pools = (o["pools"] as? [[String: Any]]) ?? []
                let regions = (o["regions"] as? [String]) ?? []
                Table(["REGION", "OVERRIDE"], regions.map { [$0, override("regions", $0)] }).print()
                print("")
                Table(
                    ["POOL", "REGION", "UP", "REASON", "WEIGHT", "EFFECTIVE", "OVERRIDE"],
                    pools.map { p in
                        let name = p["name"] as? String ?? ""
                        return [
                            name, p["region"] as? String ?? "", (p["up"] as? Bool) == true ? "up" : "DOWN",
                            p["reason"] as? String ?? "",
                            Ctl.number(p["configuredWeight"]), Ctl.number(p["effectiveWeight"]), override("pools", name)
                        ]
                    }
                ).print()
                print("")
                var rows: [[String]] = []
                for p in pools {
                    for e in (p["endpoints"] as? [[String: Any]]) ?? [] {
                        let name = e["name"] as? String ?? ""
                        rows.append([
                            name, p["name"] as? String ?? "", e["target"] as? String ?? "",
                            (e["up"] as? Bool) == true ? "up" : "DOWN",
                            e["reason"] as? String ?? "", Ctl.number(e["configuredWeight"]),
                            Ctl.number(e["effectiveWeight"]),
                            String(format: "%.0f%%", ((e["share"] as? NSNumber)?.doubleValue ?? 0) * 100),
                            override("endpoints", name)
                        ])
                    }
                }
                Table(["ENDPOINT", "POOL", "ADDRESS", "UP", "REASON", "WEIGHT", "EFFECTIVE", "SHARE", "OVERRIDE"], rows)
                    .print()
            }
        }
    }

    static func number(_ v: Any?) -> String {
        guard let d = (v as? NSNumber)?.doubleValue else { return "-" }
        return d == d.rounded() && abs(d) < 1e12 ? String(Int64(d)) : String(format: "%.2f", d)
    }

    /// Which kind of thing a name is, from the server's state (region, pool or endpoint).
    struct Target: ParsableArguments {
        @Argument(help: "A region, pool or endpoint name.")
        var name: String

        @Option(name: .long, help: "region, pool or endpoint, when the name is more than one.")
        var kind: String?

        func path(_ client: AdminClient) throws -> String {
            if let kind {
                guard ["region", "pool", "endpoint"].contains(kind) else {
                    throw CtlError("--kind must be region, pool or endpoint")
                }
                return "/v1/\(kind)s/\(Ctl.escape(name))"
            }
            let o = try Ctl.object(try client.get("/v1/state"))
            let pools = (o["pools"] as? [[String: Any]]) ?? []
            var kinds: [String] = []
            if ((o["regions"] as? [String]) ?? []).contains(name) { kinds.append("region") }
            if pools.contains(where: { $0["name"] as? String == name }) { kinds.append("pool") }
            if pools.contains(where: {
                (($0["endpoints"] as? [[String: Any]]) ?? []).contains { $0["name"] as? String == name }
            }) {
                kinds.append("endpoint")
            }
            guard let kind = kinds.first else { throw CtlError("no region, pool or endpoint named \(name)") }
            guard kinds.count == 1 else {
                throw CtlError("\(name) is a \(kinds.joined(separator: " and a ")): say which with --kind")
            }
            return "/v1/\(kind)s/\(Ctl.escape(name))"
        }
    }

    static func escape(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/?#")))
            ?? s
    }

    struct Drain: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Drain a region, pool or endpoint: no new answers name it (persisted in the state file).")
        @OptionGroup var connection: Connection
        @OptionGroup var target: Target

        func run() throws {
            try Ctl.run {
                let c = try connection.client()
                _ = try Ctl.object(try c.post(try target.path(c), ["state": "drain"]))
                print("\(target.name): drained")
            }
        }
    }

    struct Undrain: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Clear a region's, pool's or endpoint's state override (back to its health).")
        @OptionGroup var connection: Connection
        @OptionGroup var target: Target

        func run() throws {
            try Ctl.run {
                let c = try connection.client()
                _ = try Ctl.object(try c.post(try target.path(c), ["state": "auto"]))
                print("\(target.name): back to automatic")
            }
        }
    }

    struct Weight: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set an endpoint's weight (auto: back to the configured one).")
        @OptionGroup var connection: Connection
        @Argument(help: "The endpoint.") var endpoint: String
        @Argument(help: "A weight from 0 to 1000000, or auto.") var weight: String

        func validate() throws {
            // Plain decimals, as in the config: no `0x10`, `1e3`, `inf` or `nan`.
            let decimal = weight.range(of: #"^[0-9]+(\.[0-9]+)?$"#, options: .regularExpression) != nil
            guard weight == "auto" || (decimal && (Double(weight).map { $0 >= 0 && $0 <= 1_000_000 } ?? false)) else {
                throw ValidationError("the weight must be a number from 0 to 1000000, or auto")
            }
        }

        func run() throws {
            try Ctl.run {
                let value: Any = weight == "auto" ? NSNull() : (Double(weight) ?? 0)
                _ = try Ctl.object(
                    try connection.client().post("/v1/endpoints/\(Ctl.escape(endpoint))", ["weight": value]))
                print("\(endpoint): weight \(weight)")
            }
        }
    }

    struct ExplainName: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "explain", abstract: "Explain the answer a client gets now, with live health.")
        @OptionGroup var connection: Connection
        @Argument(help: "The name queried.") var name: String
        @Argument(help: "The query type.") var type: String = "A"
        @Option(name: .long, help: "The client: IP, or IP/LEN as EDNS Client Subnet.") var client: String
        @Flag(name: .long, help: "Print the JSON as the API sends it.") var json = false

        func run() throws {
            try Ctl.run {
                let q = "name=\(Ctl.query(name))&type=\(Ctl.query(type))&client=\(Ctl.query(client))"
                let r = try connection.client().get("/v1/explain?\(q)")
                _ = try Ctl.object(r)
                if json {
                    print(r.body, terminator: "")
                    return
                }
                let e = try JSONDecoder().decode(Explanation.self, from: Data(r.body.utf8))
                print(e.text, terminator: "")
            }
        }
    }

    static func query(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~:"))) ?? s
    }

    struct Anycast: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the anycast prefixes; or withdraw PROTOCOL for maintenance, or put it back to auto.")
        @OptionGroup var connection: Connection
        @Argument(help: "withdraw or auto (none: show).") var action: String?
        @Argument(help: "The BIRD static protocol of the prefix.") var proto: String?
        @Option(name: .long, help: "With a cluster: the POP whose protocol to withdraw (default this one).") var pop:
            String?

        func validate() throws {
            if let action {
                guard ["withdraw", "auto"].contains(action) else {
                    throw ValidationError("the action must be withdraw or auto")
                }
                guard proto != nil else { throw ValidationError("\(action) needs the PROTOCOL") }
            }
        }

        func run() throws {
            try Ctl.run {
                let c = try connection.client()
                let r: AdminClient.Reply
                if let action, let proto {
                    var body: [String: Any] = ["state": action]
                    if let pop { body["pop"] = pop }
                    r = try c.post("/v1/anycast/\(Ctl.escape(proto))", body)
                } else {
                    r = try c.get("/v1/anycast")
                }
                let o = try Ctl.object(r)
                print(
                    "BIRD at \(o["socket"] ?? "?"): \((o["connected"] as? Bool) == true ? "connected" : "NOT connected (\(o["birdError"] ?? ""))")"
                )
                let prefixes = (o["prefixes"] as? [[String: Any]]) ?? []
                Table(
                    ["PREFIX", "PROTOCOL", "DESIRED", "BIRD", "REASON", "ALARM"],
                    prefixes.map { p in
                        [
                            p["prefix"] as? String ?? "", p["proto"] as? String ?? "", p["desired"] as? String ?? "",
                            p["birdState"] as? String ?? "?", p["reason"] as? String ?? "", p["alarm"] as? String ?? ""
                        ]
                    }
                ).print()
            }
        }
    }
}

/// Columns padded to their widest cell.
struct Table {
    var header: [String]
    var rows: [[String]]
    init(_ header: [String], _ rows: [[String]]) {
        self.header = header
        self.rows = rows
    }

    func print() {
        let rows = self.rows.map { $0.map { terminalSafe($0, keepNewlines: false) } }
        var widths = header.map(\.count)
        for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
        for r in [header] + rows {
            let line = r.enumerated().map { i, c in
                i == r.count - 1 ? c : c.padding(toLength: widths[i], withPad: " ", startingAt: 0)
            }
            // One row per line: a cell's own newline would forge another.
            Swift.print(
                terminalSafe(line.joined(separator: "  "), keepNewlines: false).trimmingCharacters(in: .whitespaces))
        }
    }
}
