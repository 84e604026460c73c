import Foundation
import Steering

/// Admin overrides on disk (JSON), written atomically so a crash leaves the old or the new file.
package enum StateFile {
    package struct Contents: Codable {
        var version = 1
        var overrides: AdminOverrides
    }

    /// The overrides in `path`, or nil when the file does not exist or cannot be read.
    package static func read(_ path: String) -> AdminOverrides? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return (try? JSONDecoder().decode(Contents.self, from: data))?.overrides
    }

    package static func write(_ overrides: AdminOverrides, to path: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data = try enc.encode(Contents(overrides: overrides))
        let tmp = path + ".tmp"
        guard FileManager.default.createFile(atPath: tmp, contents: data) else {
            throw ServerError("cannot write \(tmp)")
        }
        guard rename(tmp, path) == 0 else { throw ServerError("cannot rename \(tmp) to \(path): \(String(cString: strerror(errno)))") }
    }
}
