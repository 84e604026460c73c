import Foundation

/// Where the package, its fixtures and the built binary are.
enum Paths {
    static let packageRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { url.deleteLastPathComponent() }  // Support → IntegrationTests → Tests → root
        return url.path
    }()

    static var fixtures: String { packageRoot + "/Tests/Fixtures" }

    /// The `lodestar` binary: LODESTAR_BIN, else the debug build.
    static var binary: String {
        if let env = ProcessInfo.processInfo.environment["LODESTAR_BIN"] { return env }
        return packageRoot + "/.build/debug/lodestar"
    }

    /// A fresh temporary folder, removed by the caller. Writable by all when the tests run as
    /// root: the servers run as nobody (`LodestarProcess`) and write their state files there,
    /// and knot, beside them, as its own user.
    static func temporaryDirectory() throws -> String {
        let dir = NSTemporaryDirectory() + "lodestar-test-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        if getuid() == 0 { chmod(dir, 0o777) }
        return dir
    }
}
