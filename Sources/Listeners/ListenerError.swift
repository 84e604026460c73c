/// A failure to open or run a listener (a socket that cannot be bound, say), with a message a
/// person can act on.
package struct ListenerError: Error, CustomStringConvertible, Sendable {
    package var description: String
    package init(_ description: String) { self.description = description }
}
