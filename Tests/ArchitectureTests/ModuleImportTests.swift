import Foundation
import Testing

/// The module graph of DESIGN.md, checked against every `import` in `Sources/`: a module may
/// import only what its job needs (SwiftPM lets a module import any module built before it, so the
/// package manifest alone does not hold the line).
@Suite struct ModuleImportTests {
    /// The system modules every target may use.
    /// (CoreFoundation: Foundation's own layer, named where MemberImportVisibility resolves a C
    /// struct's fields through it.)
    static let system: Set<String> = ["Glibc", "Dispatch", "Synchronization", "CoreFoundation"]

    /// Per module, what it may import besides `system`. Foundation is listed where allowed: the
    /// engine, on the query path, has none.
    static let allowed: [String: Set<String>] = [
        "DNSWire": [],
        "Zones": ["DNSWire", "CLDNS", "Foundation"],
        "Geo": ["CMaxMindDB", "Foundation"],
        "Health": ["Foundation"],
        "Settings": ["Health", "Foundation"],
        "Steering": ["Geo", "Health", "CLodestarSys", "Foundation"],
        "Protection": ["DNSWire", "CLodestarSys"],
        "Engine": ["DNSWire", "Zones", "Health", "Steering", "Protection", "CLodestarSys"],
        "Prober": [
            "DNSWire", "Health", "Settings", "CLodestarSys", "Foundation", "Logging", "NIOCore", "NIOPosix", "NIOHTTP1",
            "NIOSSL", "NIOTLS"
        ],
        "Anycast": ["Prober", "Health", "Settings", "CLodestarSys", "Foundation", "Logging", "NIOCore", "NIOPosix"],
        "HTTPClient": ["Settings", "Foundation", "NIOCore", "NIOEmbedded", "NIOHTTP1", "NIOPosix", "NIOSSL"],
        "Cluster": ["Health", "Settings", "HTTPClient", "CLodestarSys", "Foundation", "Logging"],
        "Config": ["DNSWire", "Zones", "Health", "Settings", "Steering", "Protection", "Foundation", "Yams"],
        "Listeners": [
            "Engine", "Protection", "DNSWire", "CLodestarSys", "Foundation", "Logging", "NIOCore", "NIOPosix"
        ],
        "Admin": [
            "Engine", "DNSWire", "Zones", "Geo", "Health", "Settings", "Steering", "Prober", "Anycast", "Cluster",
            "CLodestarSys", "Foundation", "Logging",
            "NIOCore", "NIOPosix", "NIOHTTP1"
        ],
        "Server": [
            "Engine", "Config", "Listeners", "Admin", "DNSWire", "Zones", "Geo", "Health", "Settings", "Steering",
            "Prober", "Anycast",
            "Protection", "Cluster", "HTTPClient", "CLodestarSys", "Foundation", "Logging"
        ],
        "lodestar-fuzz": [
            "Server", "Admin", "Config", "Engine", "DNSWire", "Zones", "Health", "Settings", "Anycast", "Protection",
            "NIOHTTP1",
            "Cluster", "HTTPClient", "Geo",
            "Foundation", "Logging"
        ],
        "lodestar": [
            "Server", "Config", "Admin", "HTTPClient", "Engine", "Protection", "DNSWire", "Zones", "Health", "Settings",
            "Steering", "Geo",
            "ArgumentParser", "Foundation", "Logging"
        ]
    ]

    static var sources: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
            .appendingPathComponent("Sources")
    }

    /// (module, file, imported module) for every import line of every Swift source.
    static func imports() throws -> [(String, String, String)] {
        var out: [(String, String, String)] = []
        let fm = FileManager.default
        for module in try fm.contentsOfDirectory(atPath: sources.path).sorted() {
            guard let files = fm.enumerator(atPath: sources.appendingPathComponent(module).path) else { continue }
            for case let file as String in files where file.hasSuffix(".swift") {
                let text = try String(
                    contentsOf: sources.appendingPathComponent(module).appendingPathComponent(file), encoding: .utf8)
                for line in text.split(separator: "\n") {
                    let words = line.split(separator: " ")
                    // `import X`, `@preconcurrency import X`, `package import X`, `import struct X.Y`.
                    guard let i = words.firstIndex(of: "import"), i + 1 < words.count else { continue }
                    guard
                        words[..<i].allSatisfy({ $0.hasPrefix("@") || ["public", "package", "internal"].contains($0) })
                    else { continue }
                    var target = words[i + 1]
                    if ["struct", "class", "enum", "func", "protocol", "typealias", "var", "let"].contains(target),
                        i + 2 < words.count
                    {
                        target = words[i + 2]
                    }
                    out.append((module, file, String(target.split(separator: ".").first ?? target)))
                }
            }
        }
        return out
    }

    @Test("every Swift module imports only what DESIGN.md's module graph allows")
    func graph() throws {
        let found = try Self.imports()
        #expect(found.count > 100, "the sources were found")
        let modules = Set(found.map(\.0))
        for m in modules {
            #expect(Self.allowed[m] != nil, "module \(m) is not in the graph: add it to DESIGN.md and to this test")
        }
        for (module, file, imported) in found {
            guard let allowed = Self.allowed[module] else { continue }
            #expect(
                allowed.contains(imported) || Self.system.contains(imported), "\(module)/\(file) imports \(imported)")
        }
    }

    @Test("each C library has exactly one Swift importer; only Config reads YAML; the engine uses no NIO")
    func owners() throws {
        let found = try Self.imports()
        func importers(_ m: String) -> Set<String> { Set(found.filter { $0.2 == m }.map(\.0)) }
        #expect(importers("CLDNS") == ["Zones"])
        #expect(importers("CMaxMindDB") == ["Geo"])
        #expect(importers("Yams") == ["Config"])
        // The API, decoding origins' HTTP responses, and the one HTTP client (etcd, `lodestar ctl`).
        #expect(importers("NIOHTTP1") == ["Admin", "Prober", "HTTPClient"])
        #expect(!importers("Cluster").contains("lodestar"), "ctl borrows no HTTP client from the cluster")
        #expect(!importers("NIOCore").contains("Engine") && !importers("Foundation").contains("Engine"))
        #expect(!importers("Server").contains("Steering") && !importers("Server").contains("Prober"))
        // Health types come from Health: the control side does not borrow them from the steering decision.
        #expect(importers("Steering").isDisjoint(with: ["Prober", "Anycast", "Cluster"]))
    }

    @Test("parsing the config links no NIO: nothing Config reaches, directly or not, imports a NIO module")
    func configWithoutNIO() {
        var reached: Set<String> = []
        var todo = ["Config"]
        while let m = todo.popLast() {
            guard reached.insert(m).inserted else { continue }
            todo += (Self.allowed[m] ?? []).filter { Self.allowed[$0] != nil }
        }
        let nio = reached.flatMap { Self.allowed[$0] ?? [] }.filter { $0.hasPrefix("NIO") }
        #expect(nio.isEmpty, "Config reaches \(reached.sorted()), which import \(nio)")
        #expect(!reached.contains("Prober") && !reached.contains("Cluster") && !reached.contains("Anycast"))
    }
}
