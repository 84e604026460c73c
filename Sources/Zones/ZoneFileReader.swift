import CLDNS
import Foundation

/// Reads RFC 1035 zone text through libldns, the only place in Lodestar that sees ldns types.
///
/// libldns handles `$ORIGIN`, `$TTL`, parentheses, escapes and RFC 3597 `\#` RDATA; `$INCLUDE`
/// it reports but leaves to the caller, so the text is cut into segments at `$INCLUDE` lines and
/// each included file is read with a copy of the parser state (RFC 1035 §5.1: an include does
/// not change the origin of the including file).
public enum ZoneFileReader {
    /// `$INCLUDE` nesting deeper than this is refused (it is almost certainly a loop).
    static let maxIncludeDepth = 8
    /// Zones at least this large are parsed on every core (see `ParallelSplit`): below it the
    /// threads cost more than they save.
    public static let defaultParallelThreshold = 4 << 20

    /// Parser state carried across segments and includes.
    struct State {
        var origin: String
        var defaultTTL: UInt32
        /// The last owner written out, which a record with a blank owner takes (after an
        /// `$INCLUDE` too: the included file's owners do not carry over, as in knot).
        var owner: String? = nil
        /// The zone's `ZoneLimits` and what the load has spent of them (shared with includes).
        var budget = LoadBudget(ZoneLimits())
    }

    /// Reads `path` as zone `origin`, appending records to `list` and problems to `errors`.
    public static func read(
        path: String, origin: String, into list: inout RecordList, errors: inout [ZoneError],
        parallelThreshold: Int = defaultParallelThreshold, limits: ZoneLimits = ZoneLimits()
    ) {
        var state = State(origin: origin, defaultTTL: 3600, budget: LoadBudget(limits))
        read(path: path, state: &state, depth: 0, into: &list, errors: &errors, parallelThreshold: parallelThreshold)
    }

    static func read(
        path: String, state: inout State, depth: Int, into list: inout RecordList,
        errors: inout [ZoneError], parallelThreshold: Int = defaultParallelThreshold
    ) {
        let budget = state.budget
        guard !budget.exhausted else { return }
        // The size first, from the descriptor that is then read: a file larger than the limit is
        // never read (nor one that grows past it while being read).
        // O_NONBLOCK: a FIFO (or a device) named as a zone file must not block the open; only a
        // regular file is read.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            errors.append(ZoneError(file: path, line: 0, message: "cannot read file"))
            return
        }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else {
            close(fd)
            errors.append(ZoneError(file: path, line: 0, message: "not a regular file"))
            return
        }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        let limits = budget.limits
        let size = Int(st.st_size)
        guard size <= limits.fileSize else {
            budget.exhausted = true
            errors.append(
                ZoneError(
                    file: path, line: 0,
                    message: "file of \(size) octets, over limits.zone-file-size (\(limits.fileSize))"))
            return
        }
        guard budget.octets <= limits.zoneSize - size else {
            budget.exhausted = true
            errors.append(
                ZoneError(
                    file: path, line: 0,
                    message:
                        "the zone's files come to over limits.zone-size (\(limits.zoneSize) octets, includes counted each time)"
                ))
            return
        }
        let data: Data
        do {
            // nil at the end of the file: an empty file.
            data = try handle.read(upToCount: limits.fileSize + 1) ?? Data()
        } catch {
            errors.append(ZoneError(file: path, line: 0, message: "cannot read file: \(error.localizedDescription)"))
            return
        }
        guard data.count <= limits.fileSize else {
            budget.exhausted = true
            errors.append(
                ZoneError(
                    file: path, line: 0,
                    message: "the file grew over limits.zone-file-size (\(limits.fileSize)) while read"))
            return
        }
        budget.octets += data.count
        // Before the copy the parser works on: a file of one huge line costs one read, not two.
        if let (line, length) = data.withUnsafeBytes({ longLine($0, limit: limits.lineLength) }) {
            budget.exhausted = true
            errors.append(
                ZoneError(
                    file: path, line: line,
                    message: "a line of \(length)+ octets, over limits.zone-line-length (\(limits.lineLength))"))
            return
        }
        var text = [UInt8](data)
        let parallel = depth == 0 && text.count >= parallelThreshold
        let scan = ZoneText.normalise(
            &text, origin: state.origin, cutEvery: parallel ? ParallelSplit.cutEvery(text.count) : 0)
        for p in scan.problems {
            errors.append(ZoneError(file: path, line: p.line, message: p.message))
        }
        // Parse what comes before each $INCLUDE or relative $ORIGIN, then the included file or the
        // new origin, then go on after its line.
        var segmentStart = 0
        var segmentLine = 1
        for r in scan.readerLines {
            parseSegment(
                text, segmentStart..<r.offset, firstLine: segmentLine, path: path, state: &state,
                into: &list, errors: &errors)
            var end = r.offset
            while end < text.count && text[end] != UInt8(ascii: "\n") { end += 1 }
            if let origin = r.origin {
                state.origin = origin
            } else {
                let directive = String(decoding: text[r.offset..<end], as: UTF8.self)
                include(directive, from: path, line: r.line, state: state, depth: depth, into: &list, errors: &errors)
            }
            segmentStart = min(end + 1, text.count)
            segmentLine = r.line + 1
        }
        let rest = segmentStart..<text.count
        if segmentStart == 0 && parallel {
            ParallelSplit.parse(text, scan: scan, path: path, state: &state, into: &list, errors: &errors)
        } else {
            parseSegment(text, rest, firstLine: segmentLine, path: path, state: &state, into: &list, errors: &errors)
        }
    }

    static func include(
        _ directive: String, from path: String, line: Int, state: State, depth: Int,
        into list: inout RecordList, errors: inout [ZoneError]
    ) {
        let words = directive.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            .prefix { !$0.hasPrefix(";") }
        guard words.count >= 2, words.count <= 3 else {
            errors.append(
                ZoneError(file: path, line: line, message: "$INCLUDE needs a file name and an optional origin"))
            return
        }
        let budget = state.budget
        guard !budget.exhausted else { return }
        budget.includes += 1
        guard budget.includes <= budget.limits.includes else {
            budget.exhausted = true
            errors.append(
                ZoneError(
                    file: path, line: line,
                    message:
                        "more than limits.zone-includes (\(budget.limits.includes)) $INCLUDEs followed in this zone"))
            return
        }
        guard depth < maxIncludeDepth else {
            errors.append(
                ZoneError(file: path, line: line, message: "$INCLUDE nested more than \(maxIncludeDepth) deep"))
            return
        }
        var file = String(words[1])
        if !file.hasPrefix("/") {
            file = (URL(fileURLWithPath: path).deletingLastPathComponent().path as NSString).appendingPathComponent(
                file)
        }
        var inner = state
        if words.count == 3 {
            let o = String(words[2])
            inner.origin = o.hasSuffix(".") ? o : o + "." + state.origin
        }
        guard FileManager.default.isReadableFile(atPath: file) else {
            errors.append(ZoneError(file: path, line: line, message: "$INCLUDE file \(file) cannot be read"))
            return
        }
        read(
            path: file, state: &inner, depth: depth + 1, into: &list, errors: &errors,
            parallelThreshold: defaultParallelThreshold)
    }

    /// The first line longer than `limit` octets (its number, and how long it is at least), if any.
    static func longLine(_ buf: UnsafeRawBufferPointer, limit: Int) -> (line: Int, length: Int)? {
        guard buf.count > limit, let base = buf.baseAddress else { return nil }
        var start = 0
        var line = 1
        while start < buf.count {
            let nl = memchr(base + start, 0x0A, buf.count - start)
            let end = nl.map { UnsafeRawPointer($0) - base } ?? buf.count
            if end - start > limit { return (line, end - start) }
            start = end + 1
            line += 1
        }
        return nil
    }

    /// Parses one run of zone text with libldns.
    static func parseSegment(
        _ text: [UInt8], _ range: Range<Int>, firstLine: Int, path: String, state: inout State,
        into list: inout RecordList, errors: inout [ZoneError]
    ) {
        guard !range.isEmpty else { return }
        let fileIndex = list.fileIndex(path)
        text.withUnsafeBufferPointer { buf in
            let start = UnsafeMutableRawPointer(mutating: buf.baseAddress! + range.lowerBound)
            guard let fp = fmemopen(start, range.count, "r") else {
                errors.append(ZoneError(file: path, line: firstLine, message: "cannot open text for parsing"))
                return
            }
            defer { fclose(fp) }
            // The stream is this thread's alone: libldns reads it a character at a time, and
            // glibc's getc took a lock for each (a sixth of a large zone's load time).
            _ = __fsetlocking(fp, Int32(FSETLOCKING_BYCALLER))
            var origin = ldns_dname_new_frm_str(state.origin)
            var prev = state.owner.flatMap { ldns_dname_new_frm_str($0) } ?? origin.map { ldns_rdf_clone($0) } ?? nil
            defer {
                if let o = origin {
                    state.origin = rdfText(o) ?? state.origin
                    ldns_rdf_deep_free(o)
                }
                if let p = prev {
                    state.owner = rdfText(p)
                    ldns_rdf_deep_free(p)
                }
            }
            guard let buffer = ldns_buffer_new(65536) else { return }
            defer { ldns_buffer_free(buffer) }
            var ttl = state.defaultTTL
            defer { state.defaultTTL = ttl }
            var lineNumber: Int32 = Int32(firstLine - 1)
            var guardCount = 0
            while feof(fp) == 0 {
                guardCount += 1
                if guardCount > 100_000_000 { break }  // bounded: more RRs than any zone here will hold
                var rr: UnsafeMutablePointer<ldns_rr>? = nil
                let before = lineNumber
                let status = ldns_rr_new_frm_fp_l(&rr, fp, &ttl, &origin, &prev, &lineNumber)
                let recordLine = Int(max(before + 1, lineNumber))
                switch status {
                case LDNS_STATUS_OK:
                    guard let rr else { continue }
                    let budget = state.budget
                    budget.records += 1
                    if budget.records > budget.limits.records {
                        budget.exhausted = true
                        errors.append(
                            ZoneError(
                                file: path, line: recordLine,
                                message: "more than limits.zone-records (\(budget.limits.records)) records"))
                        ldns_rr_free(rr)
                        return
                    }
                    if let problem = append(
                        rr, buffer: OpaquePointer(buffer), file: fileIndex, line: recordLine, into: &list)
                    {
                        errors.append(ZoneError(file: path, line: recordLine, message: problem))
                    }
                    ldns_rr_free(rr)
                case LDNS_STATUS_SYNTAX_EMPTY, LDNS_STATUS_SYNTAX_TTL, LDNS_STATUS_SYNTAX_ORIGIN:
                    continue
                default:
                    if feof(fp) != 0 && status == LDNS_STATUS_SYNTAX_ERR && lineNumber == before { break }
                    let reason = String(cString: ldns_get_errorstr_by_id(status))
                    errors.append(ZoneError(file: path, line: recordLine, message: reason.lowercased()))
                }
            }
        }
    }

    static func rdfText(_ rdf: UnsafeMutablePointer<ldns_rdf>) -> String? {
        guard let s = ldns_rdf2str(rdf) else { return nil }
        defer { free(s) }
        return String(cString: s)
    }

    /// Adds the record to `list`; what is wrong with it when it cannot go on the wire (a type or
    /// class past 16 bits, RDATA past 65,535 octets), found by fuzzing: libldns accepts those.
    static func append(
        _ rr: UnsafeMutablePointer<ldns_rr>, buffer: OpaquePointer, file: UInt16, line: Int,
        into list: inout RecordList
    ) -> String? {
        guard let owner = ldns_rr_owner(rr) else { return "a record without an owner" }
        guard let type = UInt16(exactly: ldns_rr_get_type(rr).rawValue) else {
            return "type \(ldns_rr_get_type(rr).rawValue) does not fit in 16 bits"
        }
        guard let rrClass = UInt16(exactly: ldns_rr_get_class(rr).rawValue) else {
            return "class \(ldns_rr_get_class(rr).rawValue) does not fit in 16 bits"
        }
        // ldns writes the RDATA exactly as it goes on the wire (names uncompressed).
        ldns_buffer_clear(UnsafeMutablePointer(buffer))
        guard ldns_rr_rdata2buffer_wire(UnsafeMutablePointer(buffer), rr) == LDNS_STATUS_OK else {
            return "the record's data cannot be written in wire form"
        }
        let b = UnsafeMutablePointer<ldns_buffer>(buffer)
        guard ldns_buffer_position(b) <= 65535 else { return "the record's data is longer than 65535 octets" }
        let rd = UnsafeRawBufferPointer(start: ldns_buffer_begin(b), count: ldns_buffer_position(b))
        let ownerBytes = UnsafeRawBufferPointer(start: ldns_rdf_data(owner), count: ldns_rdf_size(owner))
        list.append(
            owner: ownerBytes, type: type, rrClass: rrClass, ttl: ldns_rr_ttl(rr), rdata: rd,
            file: file, line: line)
        return nil
    }
}
