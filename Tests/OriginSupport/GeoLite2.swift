import Foundation

/// The real GeoLite2-City database that the PyPI package `maxminddb-geolite2` ships (installed by
/// `scripts/install-deps.sh --test`), for the tests that need real clients; nil when it is missing.
public enum GeoLite2 {
    public static let path: String? = {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [
            "python3", "-c",
            "import _maxminddb_geolite2,os;print(os.path.join(os.path.dirname(_maxminddb_geolite2.__file__),'GeoLite2-City.mmdb'))"
        ]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return nil }
        p.waitUntilExit()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        guard p.terminationStatus == 0, FileManager.default.fileExists(atPath: out) else { return nil }
        // A copy anyone may read: the servers under test run as nobody, and pip put the original
        // under /root (0700), where a real deployment would never keep it.
        let copy = NSTemporaryDirectory() + "lodestar-GeoLite2-City-\(getuid()).mmdb"
        if !FileManager.default.fileExists(atPath: copy) {
            let tmp = copy + ".\(getpid())"
            guard (try? FileManager.default.copyItem(atPath: out, toPath: tmp)) != nil else { return out }
            chmod(tmp, 0o644)
            rename(tmp, copy)
        }
        return copy
    }()
}
