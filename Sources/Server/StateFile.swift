import CLodestarSys
package import Foundation
package import Health

/// Admin overrides and the last known endpoint health on disk (JSON), written atomically so a
/// crash leaves the old or the new file.
package enum StateFile {
    package struct Health: Codable, Equatable {
        package struct Entry: Codable, Equatable {
            package var up: Bool
            package var reason: String
        }
        /// Seconds since 1970 when written: health older than `prober.resume-max-age` is not resumed.
        package var savedAt: Double
        package var endpoints: [String: Entry]
    }

    package struct Contents: Codable {
        var version = 1
        package var overrides: AdminOverrides
        package var health: Health? = nil
    }

    /// The file's contents, or nil when the file does not exist or cannot be read.
    package static func read(_ path: String) -> Contents? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? JSONDecoder().decode(Contents.self, from: data)
    }

    package static func encode(_ contents: Contents) throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try enc.encode(contents)
    }

    /// Replaces the file durably (`lodestar_write_durable`: temporary file, fsync, rename, directory
    /// fsync): a crash or a full disk leaves the previous state, never a torn one.
    package static func write(_ data: Data, to path: String) throws {
        let rc = data.withUnsafeBytes { lodestar_write_durable(path, $0.baseAddress, $0.count, 0o600) }
        guard rc == 0 else { throw ServerError("cannot write \(path): \(String(cString: strerror(-rc)))") }
    }
}
