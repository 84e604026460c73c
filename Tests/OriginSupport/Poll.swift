import Foundation

/// Bounded polling for tests.
public enum Poll {
    /// Seconds until `condition` holds, checked every `every` seconds; nil once `limit` has passed.
    public static func seconds(limit: Double, every: Double = 0.01, _ condition: () throws -> Bool) rethrows -> Double?
    {
        let t0 = Date()
        while Date().timeIntervalSince(t0) < limit {
            if try condition() { return Date().timeIntervalSince(t0) }
            usleep(UInt32(every * 1_000_000))
        }
        return nil
    }
}
