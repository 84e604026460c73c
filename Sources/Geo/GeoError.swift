/// A database that cannot be used, with the file and libmaxminddb's reason.
package struct GeoError: Error, Sendable, CustomStringConvertible {
    package var file: String
    package var message: String

    package init(file: String, message: String) {
        self.file = file
        self.message = message
    }

    package var description: String { "\(file): \(message)" }
}
