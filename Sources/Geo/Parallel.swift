import Foundation

/// Load-time work split over the machine's cores (the compile of a database's maps): `parts`
/// calls of `body`, at once where there are cores for them, results in order.
public enum Parallel {
    public static func map<T>(_ parts: Int, _ body: @Sendable (Int) -> T) -> [T] {
        guard parts > 1 else { return parts == 1 ? [body(0)] : [] }
        var results = [T?](repeating: nil, count: parts)
        results.withUnsafeMutableBufferPointer { out in
            let out = Slots(base: out.baseAddress!)
            DispatchQueue.concurrentPerform(iterations: parts) { i in out.base[i] = body(i) }
        }
        return results.map { $0! }
    }

    /// Parts worth making for `count` items of work when each part should hold at least `minimum`.
    public static func parts(_ count: Int, minimum: Int) -> Int {
        max(1, min(ProcessInfo.processInfo.activeProcessorCount, count / max(1, minimum)))
    }

    /// Each call writes only its own slot.
    private struct Slots<T>: @unchecked Sendable {
        let base: UnsafeMutablePointer<T?>
    }
}
