public import Foundation

/// What tells one version of a file from another without reading it: device, inode, size, and
/// modification and change times to the nanosecond. A file replaced by rename has a new inode;
/// one overwritten in place, new times (the change time even when the others are put back).
public struct FileIdentity: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var device: UInt64
    public var inode: UInt64
    public var size: Int64
    public var modifiedSeconds: Int64
    public var modifiedNanoseconds: Int64
    /// The inode's change time: a file rewritten in place with its size and modification time
    /// put back (`touch -r`), or given other permissions, changes it.
    public var changedSeconds: Int64
    public var changedNanoseconds: Int64

    init(_ st: stat) {
        device = UInt64(truncatingIfNeeded: st.st_dev)
        inode = UInt64(truncatingIfNeeded: st.st_ino)
        size = Int64(truncatingIfNeeded: st.st_size)
        modifiedSeconds = Int64(truncatingIfNeeded: st.st_mtim.tv_sec)
        modifiedNanoseconds = Int64(truncatingIfNeeded: st.st_mtim.tv_nsec)
        changedSeconds = Int64(truncatingIfNeeded: st.st_ctim.tv_sec)
        changedNanoseconds = Int64(truncatingIfNeeded: st.st_ctim.tv_nsec)
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
