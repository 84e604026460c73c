import Foundation

/// Parses a large zone file on every core.
///
/// libldns needs seconds for a million records on one core. The text is cut at line starts that
/// begin a new record with an explicit owner, outside parentheses and quotes; each chunk starts
/// from the parser state that the `$ORIGIN`/`$TTL` directives before it produce (replayed through
/// libldns, so they mean exactly what they would sequentially), and the chunks' records are
/// concatenated in file order.
enum ParallelSplit {
    /// How many octets apart `ZoneText` should record cut points in a file of `count` octets:
    /// four chunks per core, so that uneven chunks still keep every core busy.
    static func cutEvery(_ count: Int) -> Int {
        max(1, count / (max(1, ProcessInfo.processInfo.activeProcessorCount) * 4))
    }

    /// Parses `text` in chunks cut at `scan.cuts`; `scan.directives` are replayed to give each
    /// chunk the `$ORIGIN`/`$TTL` state in force where it starts.
    static func parse(
        _ text: [UInt8], scan: ZoneText.Scan, path: String, state: inout ZoneFileReader.State,
        into list: inout RecordList, errors: inout [ZoneError]
    ) {
        let starts = [(offset: 0, line: 1)] + scan.cuts
        let chunks = starts.indices.map { k in
            (
                range: starts[k].offset..<(k + 1 < starts.count ? starts[k + 1].offset : text.count),
                firstLine: starts[k].line
            )
        }
        let directives = scan.directives
        // The state at each chunk start: replay the directives that precede it.
        var states: [ZoneFileReader.State] = []
        var replay = state
        var d = 0
        for chunk in chunks {
            while d < directives.count && directives[d].lowerBound < chunk.range.lowerBound {
                var scratch = RecordList()
                var ignored: [ZoneError] = []
                ZoneFileReader.parseSegment(
                    text, directives[d], firstLine: 1, path: path, state: &replay,
                    into: &scratch, errors: &ignored)
                d += 1
            }
            // Each chunk counts its records on a budget of its own (one shared by threads would
            // race); they are added up below.
            var s = replay
            s.budget = LoadBudget(state.budget.limits)
            states.append(s)
        }
        var lists = [RecordList](repeating: RecordList(), count: chunks.count)
        var errs = [[ZoneError]](repeating: [], count: chunks.count)
        var finals = states
        lists.withUnsafeMutableBufferPointer { lp in
            errs.withUnsafeMutableBufferPointer { ep in
                finals.withUnsafeMutableBufferPointer { fp in
                    let lpp = SendablePointer(lp)
                    let epp = SendablePointer(ep)
                    let fpp = SendablePointer(fp)
                    DispatchQueue.concurrentPerform(iterations: chunks.count) { k in
                        ZoneFileReader.parseSegment(
                            text, chunks[k].range, firstLine: chunks[k].firstLine, path: path,
                            state: &fpp.p[k], into: &lpp.p[k], errors: &epp.p[k])
                    }
                }
            }
        }
        let budget = state.budget
        for k in 0..<chunks.count {
            budget.records += finals[k].budget.records
            if finals[k].budget.exhausted || budget.records > budget.limits.records {
                budget.exhausted = true
                // The chunk's own error has the record's line; past the limit only in the sum, its first line.
                errors.append(
                    errs[k].first { $0.message.hasPrefix("more than limits.zone-records") }
                        ?? ZoneError(
                            file: path, line: chunks[k].firstLine,
                            message: "more than limits.zone-records (\(budget.limits.records)) records"))
                return
            }
            list.append(contentsOf: lists[k])
            errors += errs[k]
        }
        if let last = finals.last {
            state = last
            state.budget = budget
        }
    }
}

/// Lets each concurrent worker write its own slot of a buffer that outlives the workers.
struct SendablePointer<T>: @unchecked Sendable {
    let p: UnsafeMutableBufferPointer<T>
    init(_ p: UnsafeMutableBufferPointer<T>) { self.p = p }
}
