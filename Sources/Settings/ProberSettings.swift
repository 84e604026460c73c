/// Prober settings (`prober:` in the config).
package struct ProberSettings: Sendable, Equatable {
    /// Most checks in flight at once; the rest wait their turn (and count as late).
    package var concurrency = 64
    /// Before answering, the first round of checks may take this long; checks still running then
    /// leave their endpoint "not checked yet" (counted up).
    package var coldStartTimeout = 5.0
    /// Health persisted in the state file is resumed at start when it is younger than this.
    package var resumeMaxAge = 300.0
    /// External health input: a file of `NAME up|down [reason]` lines, watched.
    package var externalFile: String? = nil
    /// External input older than this (the file's modification time, or the admin's POST) is ignored.
    package var externalStaleAfter = 60.0

    package init() {}
}
