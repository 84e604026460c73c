import CLodestarSys
import Foundation

extension LodestarLogHandler {
    /// Whether stderr is the journal stream systemd connected (`JOURNAL_STREAM=DEV:INODE`).
    package static func stderrIsJournal(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        guard let value = environment["JOURNAL_STREAM"] else { return false }
        let parts = value.split(separator: ":")
        guard parts.count == 2, let dev = UInt64(parts[0]), let ino = UInt64(parts[1]) else { return false }
        var device: UInt64 = 0
        var inode: UInt64 = 0
        guard lodestar_fd_identity(2, &device, &inode) == 0 else { return false }
        return device == dev && inode == ino
    }
}
