import Foundation

/// Parses a large zone file on every core.
///
/// libldns needs seconds for a million records on one core. The text is cut at line starts that
/// begin a new record with an explicit owner, outside parentheses and quotes; each chunk starts
/// from the parser state that the `$ORIGIN`/`$TTL` directives before it produce (replayed through
/// libldns, so they mean exactly what they would sequentially), and the chunks' records are
/// concatenated in file order.
enum ParallelSplit {
    struct Chunk {
        var range: Range<Int>
        var firstLine: Int
    }

    static func parse(_ text: [UInt8], path: String, state: inout ZoneFileReader.State,
                      into list: inout RecordList, errors: inout [ZoneError]) {
        let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
        let wanted = cores * 4
        let (chunks, directives) = split(text, parts: wanted)
        // The state at each chunk start: replay the directives that precede it.
        var states: [ZoneFileReader.State] = []
        var replay = state
        var d = 0
        for chunk in chunks {
            while d < directives.count && directives[d].lowerBound < chunk.range.lowerBound {
                var scratch = RecordList()
                var ignored: [ZoneError] = []
                ZoneFileReader.parseSegment(text, directives[d], firstLine: 1, path: path, state: &replay,
                                            into: &scratch, errors: &ignored)
                d += 1
            }
            states.append(replay)
        }
        var lists = [RecordList](repeating: RecordList(), count: chunks.count)
        var errs = [[ZoneError]](repeating: [], count: chunks.count)
        var finals = states
        lists.withUnsafeMutableBufferPointer { lp in
            errs.withUnsafeMutableBufferPointer { ep in
                finals.withUnsafeMutableBufferPointer { fp in
                    let lpp = SendablePointer(lp), epp = SendablePointer(ep), fpp = SendablePointer(fp)
                    DispatchQueue.concurrentPerform(iterations: chunks.count) { k in
                        ZoneFileReader.parseSegment(text, chunks[k].range, firstLine: chunks[k].firstLine, path: path,
                                                    state: &fpp.p[k], into: &lpp.p[k], errors: &epp.p[k])
                    }
                }
            }
        }
        for k in 0..<chunks.count {
            list.append(contentsOf: lists[k])
            errors += errs[k]
        }
        if let last = finals.last { state = last }
    }

    /// Finds chunk boundaries and the ranges of `$ORIGIN`/`$TTL` lines.
    static func split(_ text: [UInt8], parts: Int) -> ([Chunk], [Range<Int>]) {
        var chunks: [Chunk] = []
        var directives: [Range<Int>] = []
        let step = max(1, text.count / parts)
        var nextCut = step
        var chunkStart = 0, chunkLine = 1
        var line = 1
        var parens = 0
        var inQuote = false
        var i = 0
        var atLineStart = true
        while i < text.count {
            let c = text[i]
            if atLineStart && parens == 0 && !inQuote {
                if c == UInt8(ascii: "$") {
                    var end = i
                    while end < text.count && text[end] != UInt8(ascii: "\n") { end += 1 }
                    directives.append(i..<min(end + 1, text.count))
                } else if i >= nextCut && c != UInt8(ascii: " ") && c != UInt8(ascii: "\t")
                            && c != UInt8(ascii: ";") && c != UInt8(ascii: "\n") && c != UInt8(ascii: "\r") {
                    chunks.append(Chunk(range: chunkStart..<i, firstLine: chunkLine))
                    chunkStart = i
                    chunkLine = line
                    nextCut = i + step
                }
            }
            atLineStart = false
            switch c {
            case UInt8(ascii: "\n"): line += 1; atLineStart = true
            case UInt8(ascii: "\""): inQuote.toggle()
            case UInt8(ascii: "\\"): i += 1
            case UInt8(ascii: ";") where !inQuote:
                while i + 1 < text.count && text[i + 1] != UInt8(ascii: "\n") { i += 1 }
            case UInt8(ascii: "(") where !inQuote: parens += 1
            case UInt8(ascii: ")") where !inQuote: parens = max(0, parens - 1)
            default: break
            }
            i += 1
        }
        chunks.append(Chunk(range: chunkStart..<text.count, firstLine: chunkLine))
        return (chunks, directives)
    }
}

/// Lets each concurrent worker write its own slot of a buffer that outlives the workers.
struct SendablePointer<T>: @unchecked Sendable {
    let p: UnsafeMutableBufferPointer<T>
    init(_ p: UnsafeMutableBufferPointer<T>) { self.p = p }
}
