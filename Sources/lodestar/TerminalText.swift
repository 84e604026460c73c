/// What the command line prints comes in part from a server (`lodestar ctl`) or from files: a
/// reason with a terminal escape, a carriage return that forges a table row, must reach the
/// terminal as visible text. Control characters (C0 but newline and tab, DEL, C1) are written
/// as `\u{XX}`.
func terminalSafe(_ text: String, keepNewlines: Bool = true) -> String {
    var out = ""
    out.unicodeScalars.reserveCapacity(text.unicodeScalars.count)
    for s in text.unicodeScalars {
        let v = s.value
        let control = v < 0x20 || v == 0x7F || (0x80...0x9F).contains(v)
        if control && !(keepNewlines && (v == 0x0A || v == 0x09)) {
            out += "\\u{\(String(v, radix: 16, uppercase: true))}"
        } else {
            out.unicodeScalars.append(s)
        }
    }
    return out
}

/// `print`, with `terminalSafe` applied: every print of this module goes through it.
func print(_ items: Any..., separator: String = " ", terminator: String = "\n") {
    Swift.print(terminalSafe(items.map { "\($0)" }.joined(separator: separator)), terminator: terminator)
}
