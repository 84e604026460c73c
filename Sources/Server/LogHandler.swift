// CoreFoundation: with MemberImportVisibility, timespec's and tm's fields resolve through it in release builds.
import CoreFoundation
import Foundation
import Glibc
package import Logging

/// Log lines on stderr: text or JSON, with a message's fields (zone, file, line, endpoint, check,
/// reason, prefix…) as structured metadata. Under journald (`JOURNAL_STREAM` names our stderr)
/// each line starts with its syslog priority (`<3>`, sd-daemon(3)) and carries no timestamp of its
/// own: journald keeps the level and the time.
package struct LodestarLogHandler: LogHandler {
    package enum Format: String, CaseIterable, Sendable {
        case text, json
    }

    /// The levels `--log-level` takes, least severe first.
    package static let levels = Logger.Level.allCases.map(\.rawValue)

    package var metadata: Logger.Metadata = [:]
    package var logLevel: Logger.Level = .info
    let label: String
    let format: Format
    let journal: Bool
    let output: Output

    /// Where lines go: stderr, written whole with one write(2) each (lines from threads never interleave).
    package final class Output: @unchecked Sendable {
        let fd: Int32
        let lock = NSLock()
        package init(fd: Int32) { self.fd = fd }
        func write(_ line: String) {
            var bytes = Array(line.utf8)
            bytes.append(0x0A)
            lock.withLock {
                var off = 0
                while off < bytes.count {
                    let n = bytes[off...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { return }  // a closed or full stderr must not stop the server
                    off += n
                }
            }
        }
    }

    package init(label: String, format: Format, journal: Bool, output: Output) {
        self.label = label
        self.format = format
        self.journal = journal
        self.output = output
    }

    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// syslog(3) priorities.
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }

    package func log(event: LogEvent) {
        var fields = metadata
        if let m = event.metadata { fields.merge(m) { $1 } }
        let prefix = journal ? "<\(Self.priority(event.level))>" : ""
        switch format {
        case .text:
            var line = prefix
            if !journal { line += Self.timestamp() + " " }
            // One record, one line: a newline in a message (a file's content) is written as \n.
            // Under journald the priority says the level.
            if !journal { line += "\(event.level.rawValue): " }
            line += Self.printable("\(event.message)")
            for key in fields.keys.sorted() { line += " \(key)=\(Self.quoted("\(fields[key]!)"))" }
            output.write(line)
        case .json:
            var object: [(String, String)] = []
            if !journal { object.append(("time", Self.timestamp())) }
            object.append(("level", event.level.rawValue))
            object.append(("message", "\(event.message)"))
            for key in fields.keys.sorted() where !["time", "level", "message"].contains(key) {
                object.append((key, "\(fields[key]!)"))
            }
            output.write(
                prefix + "{" + object.map { "\(Self.jsonString($0.0)):\(Self.jsonString($0.1))" }.joined(separator: ",")
                    + "}")
        }
    }

    /// RFC 3339 in UTC with milliseconds.
    static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = time_t(ts.tv_sec)
        var tm = tm()
        gmtime_r(&t, &tm)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
            tm.tm_hour, tm.tm_min, tm.tm_sec, Int(ts.tv_nsec / 1_000_000))
    }

    /// A message with its control characters escaped (newline as \n, the rest as \u00XX): text
    /// from a client or a file (an external health reason, a zone line) must not put a NUL or a
    /// terminal escape sequence into the log.
    static func printable(_ v: String) -> String {
        guard
            v.unicodeScalars.contains(where: {
                $0.value < 0x20 || $0.value == 0x7F || $0.value == 0x2028 || $0.value == 0x2029
            })
        else {
            return v
        }
        return escaped(v, quotes: false)
    }

    /// A value as is, or in quotes when it has spaces, quotes or control characters.
    static func quoted(_ v: String) -> String {
        if !v.isEmpty
            && !v.unicodeScalars.contains(where: {
                $0 == " " || $0 == "\"" || $0 == "=" || $0.value < 0x20 || $0.value == 0x7F
            })
        {
            return v
        }
        return jsonString(v)
    }

    /// A JSON string literal (RFC 8259): quotes, backslashes and control characters escaped.
    static func jsonString(_ v: String) -> String {
        "\"" + escaped(v, quotes: true) + "\""
    }

    /// Control characters (and U+2028/2029) escaped as JSON does; with `quotes`, the quote and the
    /// backslash too (a JSON string's inside), else they stay (a log message).
    static func escaped(_ v: String, quotes: Bool) -> String {
        var out = ""
        for u in v.unicodeScalars {
            switch u {
            case "\"" where quotes: out += "\\\""
            case "\\" where quotes: out += "\\\\"
            case "\r" where quotes: out += "\\r"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 || u.value == 0x7F || u.value == 0x2028 || u.value == 0x2029 {
                    out += String(format: "\\u%04x", u.value)
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out
    }
}
