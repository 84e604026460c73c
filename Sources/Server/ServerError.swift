/// A failure to start or run the server, with a message a person can act on.
package struct ServerError: Error, CustomStringConvertible, Sendable {
    package var description: String
    package init(_ description: String) { self.description = description }
}
