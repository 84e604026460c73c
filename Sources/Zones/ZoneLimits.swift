import Foundation

/// Bounds on the work of loading one zone, so that a file cannot make a reload run for ever or
/// take the machine's memory (a file including itself ten times eight levels deep is 10^8 reads; a
/// 1 GB line took 47 s and 4.2 GB before it was refused). Each can be raised in the config
/// (`limits:`, README); a zone past one is refused with the file and line, and the previous
/// version of it keeps serving.
public struct ZoneLimits: Sendable, Equatable {
    /// Octets of one file (the zone file or one it includes). Default 1 GiB: the largest TLD zones
    /// in text are a few GB, but no zone served here by a GSLB comes near it.
    public var fileSize: Int = 1 << 30
    /// Octets of every file of one zone read together, includes counted each time they are read.
    public var zoneSize: Int = 2 << 30
    /// `$INCLUDE` lines followed in one zone, in all files and at all depths.
    public var includes: Int = 1024
    /// Octets of one line (RDATA is at most 65,535 octets: even hex text of it fits 256 KiB).
    public var lineLength: Int = 256 << 10
    /// Records of one zone.
    public var records: Int = 50_000_000

    public init() {}
}

/// What one zone's load has spent of its `ZoneLimits`, shared by the zone file and its includes.
final class LoadBudget {
    let limits: ZoneLimits
    var octets = 0
    var includes = 0
    var records = 0
    /// Set once a limit is passed: the rest of the load stops at once.
    var exhausted = false

    init(_ limits: ZoneLimits) { self.limits = limits }
}
