/// A problem found while loading a zone, located as `file:line`.
///
/// Zone errors make the zone unservable; warnings are logged and the zone is served.
public struct ZoneError: Error, Sendable, CustomStringConvertible, Equatable {
    public var file: String
    public var line: Int
    public var message: String
    public var isWarning: Bool

    public init(file: String, line: Int, message: String, isWarning: Bool = false) {
        self.file = file
        self.line = line
        self.message = message
        self.isWarning = isWarning
    }

    public var description: String {
        "\(file):\(line): \(isWarning ? "warning: " : "")\(message)"
    }
}
