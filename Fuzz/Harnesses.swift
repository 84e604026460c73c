import Admin
import Anycast
import Config
import DNSWire
import Engine
import Foundation
import Logging
import NIOHTTP1
import Protection
import Server
import Settings
import Zones

/// Coverage-guided fuzzing harnesses (libFuzzer, `scripts/fuzz.sh`), one per surface that reads
/// outside input. Each checks what must hold for every input, and traps (a finding) when it does not.
/// `LODESTAR_FUZZ_TARGET` picks the harness: query, name, zone, config, admin, bird, etcd, mmdb,
/// include.
enum Harnesses {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        url.deleteLastPathComponent()
        url.deleteLastPathComponent()
        return url.path
    }()

    static let target = ProcessInfo.processInfo.environment["LODESTAR_FUZZ_TARGET"] ?? "query"

    static func run(_ data: UnsafeRawBufferPointer) {
        switch target {
        case "query": query(data)
        case "name": name(data)
        case "zone": zone(data)
        case "config": config(data)
        case "admin": admin(data)
        case "bird": bird(data)
        case "etcd": etcd(data)
        case "mmdb": mmdb(data)
        case "include": include(data)
        default:
            fatalError(
                "LODESTAR_FUZZ_TARGET must be query, name, zone, config, admin, bird, etcd, mmdb or include (not \(target))"
            )
        }
    }

    // MARK: the bundled example, loaded once: zones, steering, cookies

    static let server: LodestarServer = {
        var logger = Logger(label: "fuzz")
        logger.logLevel = .critical
        _ = FileManager.default.changeCurrentDirectoryPath(root)
        do {
            return try LodestarServer(
                configPath: root + "/lodestar.yaml",
                overrides: { c in
                    c.stateFile = nil  // overrides are not persisted anywhere
                    c.cookieSecret = CookieSecret(k0: 1, k1: 2)
                }, logger: logger)
        } catch {
            fatalError("the bundled example does not load: \(error)")
        }
    }()

    nonisolated(unsafe) static let out = UnsafeMutableRawPointer.allocate(byteCount: 65535, alignment: 8)
    nonisolated(unsafe) static let again = UnsafeMutableRawPointer.allocate(byteCount: 65535, alignment: 8)
    nonisolated(unsafe) static var cache: AnswerCache = {
        let c = AnswerCache(slots: 1024, metrics: server.store.current.metrics)
        c.use(server.store.current)
        return c
    }()

    /// Every input gets no response or a well-formed one within its size limit; the answer
    /// cache gives the bytes a fresh answer gives.
    static func query(_ packet: UnsafeRawBufferPointer) {
        // A PROXY v2 header in front (an input that starts with its signature): parsed within the
        // input's bounds, and the query after it answered as the listeners would.
        if case .header(let length, _) = ProxyHeader.parse(packet) {
            precondition(
                length >= ProxyHeader.fixedLength && length <= packet.count,
                "a PROXY header of \(length) octets in \(packet.count)")
            query(UnsafeRawBufferPointer(rebasing: packet[length...]))
            return
        }
        let engine = server.store.current.engine
        let client = ClientAddress(bytes: [198, 51, 100, 7])
        for transport in [Transport.udp, .tcp] {
            var info = ResponseInfo()
            let n = engine.respond(
                to: packet, into: out, capacity: 65535, transport: transport, client: client, info: &info,
                now: 1_000_000_000)
            guard n > 0 else { continue }
            let limit = transport == .tcp ? 65535 : udpLimit(packet)
            precondition(n <= limit, "a \(transport) response of \(n) octets over the limit \(limit)")
            checkWellFormed(UnsafeRawBufferPointer(start: out, count: n))
        }
        // The cache: the first call may keep the response, the second may reuse it; both must
        // equal what the engine answers afresh.
        guard packet.count <= 4096 else { return }
        for _ in 0..<2 {
            let n = cache.respond(
                engine: engine, to: packet, into: out, capacity: 4096, client: client, now: 1_000_000_000)
            let m = engine.respond(
                to: packet, into: again, capacity: 4096, transport: .udp, client: client, now: 1_000_000_000)
            guard info(packet).repeatable else { continue }
            precondition(n == m && memcmp(out, again, n) == 0, "the answer cache gave other bytes than a fresh answer")
        }
    }

    /// Whether the engine answers this query the same every time (no random pick, no cookie).
    static func info(_ packet: UnsafeRawBufferPointer) -> ResponseInfo {
        var info = ResponseInfo()
        _ = server.store.current.engine.respond(
            to: packet, into: again, capacity: 4096, transport: .udp,
            client: ClientAddress(bytes: [198, 51, 100, 7]), info: &info,
            now: 1_000_000_000)
        return info
    }

    /// The UDP size limit of a query: its EDNS payload (at least 512, at most ours), or 512.
    static func udpLimit(_ packet: UnsafeRawBufferPointer) -> Int {
        var q = Query()
        _ = QueryParser.parse(packet, into: &q)
        return q.hasEDNS ? max(512, min(Int(q.ednsPayload), 1232)) : 512
    }

    /// Header, counts and every section parse back to exactly the response's length.
    static func checkWellFormed(_ r: UnsafeRawBufferPointer) {
        precondition(r.count >= 12, "a response shorter than a header")
        precondition(r[2] & 0x80 != 0, "a response without QR")
        let counts = (0..<4).map { Int(r[4 + 2 * $0]) << 8 | Int(r[5 + 2 * $0]) }
        var i = 12
        for _ in 0..<counts[0] {
            guard let next = QueryParser.skipName(r, at: i), next + 4 <= r.count else {
                preconditionFailure("a bad question")
            }
            i = next + 4
        }
        for _ in 0..<(counts[1] + counts[2] + counts[3]) {
            guard let afterName = QueryParser.skipName(r, at: i), afterName + 10 <= r.count else {
                preconditionFailure("a record cut short at \(i) of \(r.count)")
            }
            let rdlength = Int(r[afterName + 8]) << 8 | Int(r[afterName + 9])
            i = afterName + 10 + rdlength
            precondition(i <= r.count, "RDATA past the end")
        }
        precondition(i == r.count, "\(r.count - i) octets after the last record")
    }

    /// Text names: parsed or refused, and a parsed one prints back to a name that parses the same.
    static func name(_ data: UnsafeRawBufferPointer) {
        let text = String(decoding: data, as: UTF8.self)
        guard let wire = Name.fromText(text) else { return }
        precondition(wire.count <= 255, "a name over 255 octets")
        let printed = Name.toText(wire)
        precondition(Name.fromText(printed) == wire, "\(printed) does not parse back to the same name")
    }

    static let scratch = NSTemporaryDirectory() + "/lodestar-fuzz-\(getpid())"

    static func file(_ data: UnsafeRawBufferPointer, _ name: String) -> String {
        try? FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        let path = scratch + "/" + name
        FileManager.default.createFile(atPath: path, contents: Data(data))
        return path
    }

    /// Zone files: loaded or refused with file:line problems, never a trap.
    static func zone(_ data: UnsafeRawBufferPointer) {
        let path = file(data, "fuzz.test.zone")
        let loaded = ZoneDirectory.loadFile(path, origin: "fuzz.test.")
        for p in loaded.problems { precondition(!"\(p)".isEmpty) }
    }

    /// Config files: loaded or refused with file:line, never a trap.
    static func config(_ data: UnsafeRawBufferPointer) {
        let path = file(data, "lodestar.yaml")
        do {
            _ = try Config.load(path)
        } catch let e as ConfigError {
            precondition(e.file == path, "an error naming \(e.file)")
        } catch {}
    }

    static let adminServer = AdminServer(server: server, token: nil, logger: Logger(label: "fuzz"))

    /// Admin requests: method (first octet), request line, header lines, then the body.
    static func admin(_ data: UnsafeRawBufferPointer) {
        guard data.count >= 1 else { return }
        let methods: [HTTPMethod] = [.GET, .POST, .PUT, .DELETE, .HEAD, .OPTIONS]
        let method = methods[Int(data[0]) % methods.count]
        let text = String(decoding: data.dropFirst(), as: UTF8.self)
        let parts = text.split(separator: "\n", omittingEmptySubsequences: false)
        let uri = String(parts.first ?? "/")
        var headers = HTTPHeaders()
        var bodyStart = parts.count
        for (k, line) in parts.enumerated().dropFirst() {
            if line.isEmpty {
                bodyStart = k + 1
                break
            }
            let kv = line.split(separator: ":", maxSplits: 1)
            // As NIOHTTP1's decoder delivers them: ASCII names (it refuses anything else).
            if kv.count == 2, kv[0].utf8.allSatisfy({ $0 < 0x80 && $0 > 0x20 }) {
                headers.add(name: String(kv[0]), value: String(kv[1]).trimmingCharacters(in: .whitespaces))
            }
        }
        let body = Array(parts.dropFirst(bodyStart).joined(separator: "\n").utf8)
        // Reloads are slow and change nothing a request can: routed, but not run.
        if method == .POST && uri.hasPrefix("/v1/reload") { return }
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: headers)
        if let r = adminServer.refusal(head) {
            precondition((400..<500).contains(Int(r.status.code)), "a refusal with \(r.status)")
            return
        }
        let r = adminServer.handle(method: method, uri: uri, headers: headers, body: body)
        precondition(Int(r.status.code) < 500, "\(method) \(uri): HTTP \(r.status.code)")
    }

    /// BIRD's replies: lines fed to the parser, every line an outcome or an error.
    static func bird(_ data: UnsafeRawBufferPointer) {
        var parser = BirdReplyParser()
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false) {
            do {
                if let reply = try parser.feed(String(line)) {
                    precondition(!reply.lines.isEmpty && reply.code == reply.lines.last!.code)
                }
            } catch {
                parser = BirdReplyParser()
            }
        }
        _ = BirdNames.isSymbol(String(decoding: data, as: UTF8.self))
        _ = BirdNames.message(String(decoding: data, as: UTF8.self))
    }
}

#if FUZZING
    @_cdecl("LLVMFuzzerTestOneInput")
    public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
        Harnesses.run(UnsafeRawBufferPointer(start: data, count: size))
        return 0
    }
#else
    /// Without libFuzzer: replays files or folders of inputs (a corpus) through the harness, as the
    /// test suite does with the committed corpora. Exits 0 when every input passed.
    @main
    struct Replay {
        static func main() throws {
            var count = 0
            for arg in CommandLine.arguments.dropFirst() {
                var isDir: ObjCBool = false
                guard FileManager.default.fileExists(atPath: arg, isDirectory: &isDir) else { continue }
                let files =
                    isDir.boolValue
                    ? try FileManager.default.contentsOfDirectory(atPath: arg).sorted().map { arg + "/" + $0 } : [arg]
                for f in files {
                    guard let data = FileManager.default.contents(atPath: f) else { continue }
                    data.withUnsafeBytes { Harnesses.run($0) }
                    count += 1
                }
            }
            print("\(Harnesses.target): \(count) inputs replayed, no failure")
        }
    }
#endif
