import Foundation

/// The external health file (`prober.external-file`): lines of `ENDPOINT up|down [reason]`,
/// `#` comments. Re-read when its modification time changes; its entries expire
/// `stale-after` after that time. A line that cannot be parsed keeps the previous content; a file
/// that is not a regular file, or larger than `maxSize`, is refused whole (a FIFO or a device put
/// in its place must not block the reader).
public struct ExternalFileWatcher: Sendable {
    public enum Level: Sendable { case error, warning }
    public typealias Message = (level: Level, text: String)

    public static let maxSize = 4 << 20

    public let path: String
    /// What identifies the content last read: inode, size, modification and change times (a file
    /// replaced twice within the clock's granularity still differs in inode or size); nil: not
    /// read yet; `unreadable`: the file could not be read, said once.
    var seen: Identity? = nil
    static let unreadable = Identity(inode: 0, size: -1, modified: -1, changed: -1)

    struct Identity: Equatable, Sendable {
        var inode: UInt64
        var size: Int
        var modified: Double
        var changed: Double
    }

    public init(path: String) {
        self.path = path
    }

    /// Reads the file when it changed. `inputs` is nil when nothing changed (or the new content
    /// was refused); otherwise the whole new set from the file, expiring at
    /// `now + staleAfter − age` on the monotonic clock `now` is read from.
    public mutating func poll(
        known: (String) -> Bool, staleAfter: Double, now: Double,
        wallNow: Double
    ) -> (inputs: [String: ExternalInput]?, messages: [Message]) {
        guard let (text, id) = Self.load(path) else {
            guard seen != Self.unreadable else { return (nil, []) }
            seen = Self.unreadable
            return (
                nil,
                [
                    (
                        .error,
                        "\(path): cannot read the external health file (a regular file of at most \(Self.maxSize >> 20) MiB)"
                    )
                ]
            )
        }
        guard id != seen else { return (nil, []) }
        seen = id
        guard let text else {
            return (nil, [(.error, "\(path): not UTF-8 text; keeping the previous content")])
        }
        let modified = id.modified
        var messages: [Message] = []
        var entries: [String: (Bool, String)] = [:]
        var unknown = 0
        // "\r\n" is one Character: a file saved with CRLF line ends is split on both.
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
        for (n, raw) in lines.enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            guard !words.isEmpty else { continue }
            let state = words.count >= 2 ? words[1].lowercased() : ""
            guard state == "up" || state == "down" else {
                messages.append(
                    (.error, "\(path):\(n + 1): expected \"ENDPOINT up|down [reason]\"; keeping the previous content"))
                return (nil, messages)
            }
            let name = String(words[0])
            guard known(name) else {
                // The first few are said; the rest counted (a file of thousands must not flood the log).
                unknown += 1
                if unknown <= 5 { messages.append((.warning, "\(path):\(n + 1): no endpoint named \(name)")) }
                continue
            }
            let reason = words.count > 2 ? words[2...].joined(separator: " ") : state
            entries[name] = (state == "up", reason)
        }
        if unknown > 5 { messages.append((.warning, "\(path): \(unknown - 5) more lines name no endpoint")) }
        let age = wallNow - modified
        let expires = now + staleAfter - age
        guard expires > now else {
            let stale = staleAfter == staleAfter.rounded() ? "\(Int(staleAfter)) s" : "\(staleAfter) s"
            if !entries.isEmpty { messages.append((.warning, "\(path): older than \(stale); ignored")) }
            return ([:], messages)
        }
        return (entries.mapValues { ExternalInput(up: $0.0, reason: $0.1, expires: expires) }, messages)
    }

    /// The file's text and modification time (Unix seconds); nil when it is not a readable regular
    /// file of at most `maxSize` octets, or is not UTF-8.
    static func load(_ path: String) -> (String?, Identity)? {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, st.st_size >= 0, st.st_size <= maxSize else {
            return nil
        }
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
        var got = 0
        while got < bytes.count {
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + got, $0.count - got) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            got += n
        }
        let id = Identity(
            inode: UInt64(st.st_ino), size: got,
            modified: Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9,
            changed: Double(st.st_ctim.tv_sec) + Double(st.st_ctim.tv_nsec) / 1e9)
        return (String(validating: bytes[..<got], as: UTF8.self), id)
    }
}
