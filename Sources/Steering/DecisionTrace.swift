import Foundation

/// Receives the steps of a decision, for `lodestar explain` and the admin API. The query path uses
/// `NoTrace`, whose calls compile away.
public protocol DecisionTrace {
    mutating func note(_ line: @autoclosure () -> String)
}

public struct NoTrace: DecisionTrace {
    public init() {}
    @inline(__always) public mutating func note(_ line: @autoclosure () -> String) {}
}

public struct TextTrace: DecisionTrace {
    public var lines: [String] = []
    public init() {}
    public mutating func note(_ line: @autoclosure () -> String) { lines.append(line()) }
}
