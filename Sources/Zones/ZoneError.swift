/// A problem found while loading a zone, located as `file:line`.
///
/// Zone errors make the zone unservable; warnings are logged and the zone is served.
package struct ZoneError: Error, Sendable, CustomStringConvertible, Equatable {
    package var file: String
    package var line: Int
    package var message: String
    package var isWarning: Bool

    package init(file: String, line: Int, message: String, isWarning: Bool = false) {
        self.file = file
        self.line = line
        self.message = message
        self.isWarning = isWarning
    }

    package var description: String {
        "\(file):\(line): \(isWarning ? "warning: " : "")\(message)"
    }
}
