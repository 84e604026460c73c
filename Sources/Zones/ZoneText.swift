/// Prepares zone text for libldns, which stays the parser, where it reads less than RFC 1035
/// §5.1 and knot, NSD and BIND do, and finds what libldns would let through silently:
///
/// - a record whose class comes before its TTL (`www IN 300 A …`: `[<TTL>] [<class>]` in either
///   order) gets the two fields swapped in place;
/// - a relative `$ORIGIN` (`$ORIGIN sub`, relative to the origin in force; libldns would take it
///   as absolute) is reported with the absolute origin it means, for the reader to set between
///   two segments, as it handles `$INCLUDE` (no text is inserted: rewriting in place would move
///   the rest of the file once per such line);
/// - a TTL that is not a number or BIND's units (`1x`), a quoted string that runs past its line,
///   and a parenthesis never closed are errors at their line (libldns accepts the first and reads
///   the others to the end of the file).
///
/// No line is added or removed, so every record keeps its line number.
enum ZoneText {
    /// A problem found in the text: the line and what is wrong.
    struct Problem: Equatable {
        var line: Int
        var message: String
    }

    /// A directive line the reader handles itself instead of libldns: `$INCLUDE` (`origin` nil), or
    /// a relative `$ORIGIN` with the absolute origin it means.
    struct ReaderLine {
        var offset: Int
        var line: Int
        var origin: String?
    }

    /// What one pass over a file found: its problems, the lines the reader handles itself, and, when
    /// asked for, where a large file may be cut for parsing on every core (`ParallelSplit`).
    struct Scan {
        var problems: [Problem] = []
        var readerLines: [ReaderLine] = []
        /// Record starts with an explicit owner, at least `cutEvery` octets apart.
        var cuts: [(offset: Int, line: Int)] = []
        /// The other directive lines (`$ORIGIN`, `$TTL`), each with its line end, when cutting.
        var directives: [Range<Int>] = []
    }

    /// Rewrites `text` in place, no length changed (whose origin at the start is `origin`, absolute),
    /// and returns what it found.
    /// With `cutEvery` > 0 it also records cut points about that many octets apart.
    static func normalise(_ text: inout [UInt8], origin: String, cutEvery step: Int = 0) -> Scan {
        var scan = Scan()
        var nextCut = step
        var current = origin.hasSuffix(".") ? origin : origin + "."
        var i = 0
        var line = 1
        var parens = 0
        var parenLine = 0
        var inQuote = false
        var quoteLine = 0
        var atLineStart = true
        var recordStart = 0
        var recordLine = 1
        while i < text.count {
            if atLineStart && parens == 0 && !inQuote {
                atLineStart = false
                recordStart = i
                recordLine = line
                if text[i] == UInt8(ascii: "$") {
                    if let r = directive(text, at: i, line: line, origin: &current, problems: &scan.problems) {
                        scan.readerLines.append(r)
                    } else if step > 0 {
                        var end = i
                        while end < text.count && text[end] != UInt8(ascii: "\n") { end += 1 }
                        scan.directives.append(i..<min(end + 1, text.count))
                    }
                } else {
                    if step > 0 && i >= nextCut && !isSpace(text[i]) && text[i] != UInt8(ascii: ";")
                        && text[i] != UInt8(ascii: "\n") && text[i] != UInt8(ascii: "\r")
                    {
                        scan.cuts.append((i, line))
                        nextCut = i + step
                    }
                    if let p = swapClassAndTTL(&text, from: i) { scan.problems.append(Problem(line: line, message: p)) }
                }
            }
            let c = text[i]
            switch c {
            case UInt8(ascii: "\n"):
                if inQuote {
                    scan.problems.append(Problem(line: quoteLine, message: "quoted string not closed on its line"))
                    inQuote = false
                }
                if parens == 0 && i - recordStart > maxRecordText {
                    scan.problems.append(
                        Problem(
                            line: recordLine,
                            message: """
                                a record of \(i - recordStart) octets of text: libldns reads at most \(maxRecordText) and would \
                                silently drop the rest (a TXT of 300 strings came out as 255)
                                """))
                }
                line += 1
                atLineStart = true
            case UInt8(ascii: "\""):
                inQuote.toggle()
                quoteLine = line
            case UInt8(ascii: "\\"): i += 1
            case UInt8(ascii: ";") where !inQuote:
                while i + 1 < text.count && text[i + 1] != UInt8(ascii: "\n") { i += 1 }
            case UInt8(ascii: "(") where !inQuote:
                if parens == 0 { parenLine = line }
                parens += 1
            case UInt8(ascii: ")") where !inQuote: parens = max(0, parens - 1)
            default: break
            }
            i += 1
        }
        if inQuote { scan.problems.append(Problem(line: quoteLine, message: "quoted string not closed")) }
        if parens > 0 { scan.problems.append(Problem(line: parenLine, message: "parenthesis not closed")) }
        return scan
    }

    /// A record's text (its lines joined by parentheses, comments included) longer than this is
    /// refused: libldns reads a record's data into a buffer of this size and cuts what is past it
    /// without an error. RDATA is at most 65,535 octets on the wire, and its text is never shorter.
    static let maxRecordText = 65_535

    /// A presentation-form origin longer than this cannot be 255 octets or fewer on the wire
    /// (RFC 1035 §2.3.4; 4 characters per octet at most, as `\DDD`): refused before it grows.
    static let maxOriginText = 1024

    /// `$ORIGIN` (followed; a relative one is the reader's) and `$TTL` (checked); `$INCLUDE` is the
    /// reader's. Returns the line for the reader, or nil when libldns reads it.
    static func directive(_ text: [UInt8], at start: Int, line: Int, origin: inout String, problems: inout [Problem])
        -> ReaderLine?
    {
        let word = token(text, start)
        let name = String(decoding: text[word], as: UTF8.self).uppercased()
        if name == "$INCLUDE" { return ReaderLine(offset: start, line: line, origin: nil) }
        let valueStart = skipSpace(text, word.upperBound)
        let value = token(text, valueStart)
        if name == "$TTL" {
            if value.isEmpty || !isTTL(text[value]) {
                problems.append(Problem(line: line, message: "$TTL needs a TTL: seconds, or units such as 1h30m"))
            }
        } else if name == "$ORIGIN", !value.isEmpty {
            let v = String(decoding: text[value], as: UTF8.self)
            if isAbsolute(v) {
                origin = v
                return nil
            }
            let absolute = origin == "." ? v + "." : v + "." + origin
            guard absolute.utf8.count <= maxOriginText else {
                problems.append(Problem(line: line, message: "$ORIGIN \(v) makes an origin longer than 255 octets"))
                return nil
            }
            origin = absolute
            return ReaderLine(offset: start, line: line, origin: absolute)
        }
        return nil
    }

    /// Whether a name in text ends with an unescaped dot.
    static func isAbsolute(_ name: String) -> Bool {
        guard name.hasSuffix(".") else { return false }
        var backslashes = 0
        for c in name.dropLast().reversed() {
            if c == "\\" { backslashes += 1 } else { break }
        }
        return backslashes % 2 == 0
    }

    static func isSpace(_ c: UInt8) -> Bool { c == UInt8(ascii: " ") || c == UInt8(ascii: "\t") }

    /// The token starting at `i` (up to white space, a line end, `;`, `(` or `)`).
    static func token(_ text: [UInt8], _ i: Int) -> Range<Int> {
        var j = i
        while j < text.count {
            let c = text[j]
            if isSpace(c) || c == UInt8(ascii: "\n") || c == UInt8(ascii: "\r") || c == UInt8(ascii: ";")
                || c == UInt8(ascii: "(") || c == UInt8(ascii: ")") || c == UInt8(ascii: "\"")
            {
                break
            }
            if c == UInt8(ascii: "\\") { j += 1 }
            j += 1
        }
        return i..<min(j, text.count)
    }

    static func skipSpace(_ text: [UInt8], _ i: Int) -> Int {
        var j = i
        while j < text.count && isSpace(text[j]) { j += 1 }
        return j
    }

    /// At a record's first octet: skips the owner (present when the line does not start with white
    /// space), then swaps the next two fields when they are a class and a TTL. A field there that
    /// starts with a digit can only be a TTL; one that is not is the problem returned.
    static func swapClassAndTTL(_ text: inout [UInt8], from start: Int) -> String? {
        var i = start
        if !isSpace(text[i]) {
            let owner = token(text, i)
            if owner.isEmpty { return nil }
            i = owner.upperBound
        }
        i = skipSpace(text, i)
        let first = token(text, i)
        guard !first.isEmpty else { return nil }
        if startsWithDigit(text[first]) { return isTTL(text[first]) ? nil : badTTL(text[first]) }
        guard isClass(text[first]) else { return nil }
        let gapStart = first.upperBound
        let secondStart = skipSpace(text, gapStart)
        guard secondStart > gapStart else { return nil }
        let second = token(text, secondStart)
        guard !second.isEmpty, startsWithDigit(text[second]) else { return nil }
        guard isTTL(text[second]) else { return badTTL(text[second]) }
        let swapped = Array(text[second]) + Array(text[gapStart..<secondStart]) + Array(text[first])
        text.replaceSubrange(first.lowerBound..<second.upperBound, with: swapped)
        return nil
    }

    static func startsWithDigit(_ t: ArraySlice<UInt8>) -> Bool {
        t.first.map { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) } ?? false
    }

    static func badTTL(_ t: ArraySlice<UInt8>) -> String {
        "\"\(String(decoding: t, as: UTF8.self))\" is not a TTL (seconds, or units such as 1h30m)"
    }

    /// IN, CH, HS, CS or CLASSnnn (RFC 3597), in any case (no allocation: this runs on every line).
    static func isClass(_ t: ArraySlice<UInt8>) -> Bool {
        let s = t.startIndex
        func up(_ k: Int) -> UInt8 { t[s + k] & 0xDF }  // ASCII letters to upper case
        if t.count == 2 {
            let a = up(0)
            let b = up(1)
            return (a == 0x49 && b == 0x4E) || (a == 0x43 && b == 0x48) || (a == 0x48 && b == 0x53)
                || (a == 0x43 && b == 0x53)
        }
        guard t.count > 5, up(0) == 0x43, up(1) == 0x4C, up(2) == 0x41, up(3) == 0x53, up(4) == 0x53 else {
            return false
        }
        return t.dropFirst(5).allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
    }

    /// A TTL: digits, or BIND's units (`1h30m`, `1W`): digits each followed by one of s m h d w.
    static func isTTL(_ t: ArraySlice<UInt8>) -> Bool {
        guard let first = t.first, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { return false }
        var lastWasDigit = false
        for c in t {
            if (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) {
                lastWasDigit = true
            } else if lastWasDigit, "smhdwSMHDW".utf8.contains(c) {
                lastWasDigit = false
            } else {
                return false
            }
        }
        return true
    }
}
