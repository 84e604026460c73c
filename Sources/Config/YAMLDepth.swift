/// How deep a YAML text nests, found before Yams composes it: the composer recurses once a level,
/// and a text nested thousands deep overflowed the stack (`lodestar check` exited 139; a reload
/// killed the server). A config never needs more than a dozen levels.
enum YAMLDepth {
    /// Nesting beyond this is refused (the deepest config key, a latency row, is 5 levels down).
    static let limit = 64

    /// The first line where block indentation plus flow brackets nest past `limit`, if any.
    /// Counts conservatively: a bracket inside a quoted string counts too, which only matters past
    /// 64 of them.
    static func tooDeep(_ text: String) -> Int? {
        var indents: [Int] = []  // the block levels open at this point
        var flow = 0
        var lineNumber = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let u = Array(line.utf8)
            var i = 0
            while i < u.count && u[i] == UInt8(ascii: " ") { i += 1 }
            guard i < u.count, u[i] != UInt8(ascii: "#"), u[i] != UInt8(ascii: "\r") else { continue }
            if flow == 0 {
                // "- - x" and "? x" open a level per marker, at the marker's column.
                var positions = [i]
                var j = i
                while j + 1 < u.count, u[j] == UInt8(ascii: "-") || u[j] == UInt8(ascii: "?"),
                    u[j + 1] == UInt8(ascii: " ")
                {
                    j += 2
                    while j < u.count && u[j] == UInt8(ascii: " ") { j += 1 }
                    positions.append(j)
                }
                while let last = indents.last, last >= i { indents.removeLast() }
                indents += positions
            }
            var quote: UInt8? = nil
            scan: for c in u[i...] {
                if let q = quote {
                    if c == q { quote = nil }
                    continue
                }
                switch c {
                case UInt8(ascii: "\""), UInt8(ascii: "'"): quote = c
                case UInt8(ascii: "["), UInt8(ascii: "{"): flow += 1
                case UInt8(ascii: "]"), UInt8(ascii: "}"): flow = max(0, flow - 1)
                case UInt8(ascii: "#"): break scan
                default: continue
                }
                if indents.count + flow > limit { return lineNumber }
            }
            if indents.count + flow > limit { return lineNumber }
        }
        return nil
    }
}
