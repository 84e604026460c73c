public import Foundation

/// What tells one version of a file from another without reading it: device, inode, size and
/// modification time to the nanosecond. A file replaced by rename has a new inode; one
/// overwritten in place, a new time and usually a new size.
public struct FileIdentity: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var device: UInt64
    public var inode: UInt64
    public var size: Int64
    public var modifiedSeconds: Int64
    public var modifiedNanoseconds: Int64

    init(_ st: stat) {
        device = UInt64(truncatingIfNeeded: st.st_dev)
        inode = UInt64(truncatingIfNeeded: st.st_ino)
        size = Int64(truncatingIfNeeded: st.st_size)
        modifiedSeconds = Int64(truncatingIfNeeded: st.st_mtim.tv_sec)
        modifiedNanoseconds = Int64(truncatingIfNeeded: st.st_mtim.tv_nsec)
    }

    /// The identity of the file at a path now (following links), or nil when it cannot be read.
    public static func of(_ path: String) -> FileIdentity? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return FileIdentity(st)
    }

    /// The file's modification time.
    public var modified: Date {
        Date(timeIntervalSince1970: Double(modifiedSeconds) + Double(modifiedNanoseconds) / 1e9)
    }

    public var description: String { "inode \(inode), \(size) octets, modified \(modified)" }
}
