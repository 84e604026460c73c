import Foundation
import Steering

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

    package static func write(_ contents: Contents, to path: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try enc.encode(contents)
        let tmp = path + ".tmp"
        guard FileManager.default.createFile(atPath: tmp, contents: data) else {
            throw ServerError("cannot write \(tmp)")
        }
        guard rename(tmp, path) == 0 else { throw ServerError("cannot rename \(tmp) to \(path): \(String(cString: strerror(errno)))") }
    }
}
