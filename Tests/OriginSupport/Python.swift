import Foundation

/// Python 3 for the tests that write their own MaxMind databases (mmdb-writer, installed by
/// `scripts/install-deps.sh --test`).
public enum Python {
    /// Runs `script` and returns its exit status.
    public static func run(_ script: String) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script]
        try p.run()
        p.waitUntilExit()
        return p.terminationStatus
    }
}
