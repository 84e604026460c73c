import Synchronization

/// Holds the current snapshot; readers take it once per batch of datagrams or per TCP message.
/// `version` changes with every replacement, so a hot loop can keep its snapshot until then
/// without taking the lock.
public final class SnapshotStore: Sendable {
    private let box: Mutex<Snapshot>
    private let counter = Atomic<Int>(0)

    public init(_ snapshot: Snapshot) {
        box = Mutex(snapshot)
    }

    public var current: Snapshot { box.withLock { $0 } }

    /// Bumped after each `replace`: a reader that saw version v before taking `current` holds a
    /// snapshot at least as new as v.
    @inline(__always)
    public var version: Int { counter.load(ordering: .acquiring) }

    public func replace(_ snapshot: Snapshot) {
        box.withLock { $0 = snapshot }
        counter.add(1, ordering: .releasing)
    }
}
