import DNSWire
import Foundation

/// Turns parsed records into a `Zone`, enforcing the load-time checks of RFC 1034/1035/2181/6672.
///
/// Checks: class IN only; every owner inside the zone; no meta-types; exactly one SOA, at the apex;
/// NS at the apex; CNAME alone at its name (RFC 1034 §3.6.2, RFC 2181 §10.1) and single; only
/// address glue below a zone cut; nothing below a DNAME (RFC 6672 §2.4). Duplicate records are
/// dropped (RFC 2181 §5); differing TTLs within an RRset take the first one, with a warning.
public enum ZoneBuilder {
    /// `steered` names (lower-case wire, inside the zone) are load-balanced: each gets a node, even
    /// without records, flagged `Zone.Flag.steered`.
    public static func build(
        origin originText: String, records input: RecordList, mainFile: String,
        steered: [[UInt8]] = []
    )
        -> (zone: Zone?, problems: [ZoneError])
    {
        var list = input
        list.lowercaseOwners()
        var problems: [ZoneError] = []
        guard let originWire = Name.fromText(originText) else {
            return (nil, [ZoneError(file: mainFile, line: 0, message: "invalid zone name \(originText)")])
        }
        let origin = Name.lowercased(originWire)
        var table = BuildTable(expected: list.entries.count)
        let apex = table.insert(origin[...], origin: origin)
        var heads: [Int32] = []
        var next = [Int32](repeating: -1, count: list.entries.count)
        func sourceLine(_ e: RecordList.Entry) -> (String, Int) {
            (list.files.indices.contains(Int(e.file)) ? list.files[Int(e.file)] : mainFile, Int(e.line))
        }
        for (k, e) in list.entries.enumerated() {
            let (file, line) = sourceLine(e)
            if e.rrClass != RRClass.in {
                problems.append(ZoneError(file: file, line: line, message: "class \(e.rrClass) is not IN"))
                continue
            }
            if RRType.isMetaType(e.type) {
                problems.append(
                    ZoneError(
                        file: file, line: line,
                        message: "type \(RRType.name(e.type)) is a meta-type and cannot be in a zone"))
                continue
            }
            let owner = list.owner(e)
            guard Name.isSubdomain(owner, of: origin[...]) else {
                // Ignored with a warning, as knot and BIND do: the rest of the zone is served.
                problems.append(
                    ZoneError(
                        file: file, line: line,
                        message:
                            "owner \(Name.toText(Array(owner))) is outside the zone \(Name.toText(origin)); record ignored",
                        isWarning: true))
                continue
            }
            let node = table.insert(owner, origin: origin)
            while heads.count < table.nodes.count { heads.append(-1) }
            next[k] = heads[node]
            heads[node] = Int32(k)
        }
        var steeredNodes: [Int] = []
        for name in steered where Name.isSubdomain(name[...], of: origin[...]) {
            steeredNodes.append(table.insert(name[...], origin: origin))
        }
        while heads.count < table.nodes.count { heads.append(-1) }

        var rrsets: [Zone.RRset] = []
        var data: [UInt8] = []
        rrsets.reserveCapacity(list.entries.count)
        data.reserveCapacity(list.entries.count * 8)
        var soaRRset = -1
        var serial: UInt32 = 0
        var entries: [Int] = []
        var seen: [ArraySlice<UInt8>] = []
        var types: [UInt16] = []
        for node in 0..<table.nodes.count {
            entries.removeAll(keepingCapacity: true)
            var e = heads[node]
            while e >= 0 {
                entries.append(Int(e))
                e = next[Int(e)]
            }
            entries.reverse()  // file order
            table.nodes[node].rrsetStart = UInt32(rrsets.count)
            guard !entries.isEmpty else { continue }
            if entries.count > 1 {
                entries.sort {
                    list.entries[$0].type < list.entries[$1].type
                        || (list.entries[$0].type == list.entries[$1].type && $0 < $1)
                }
            }
            types.removeAll(keepingCapacity: true)
            var i = 0
            while i < entries.count {
                let type = list.entries[entries[i]].type
                var j = i
                while j < entries.count && list.entries[entries[j]].type == type { j += 1 }
                let group = entries[i..<j]
                let first = list.entries[group.first!]
                seen.removeAll(keepingCapacity: true)
                var seenSet: Set<ArraySlice<UInt8>> = []
                let start = UInt32(data.count)
                var count = 0
                for idx in group {
                    let r = list.entries[idx]
                    let rd = list.rdata(r)
                    if group.count > 16 {
                        if !seenSet.insert(rd).inserted { continue }
                    } else {
                        if seen.contains(where: { $0.elementsEqual(rd) }) { continue }
                        seen.append(rd)
                    }
                    if r.ttl != first.ttl {
                        let (file, line) = sourceLine(r)
                        problems.append(
                            ZoneError(
                                file: file, line: line,
                                message:
                                    "TTL \(r.ttl) differs from \(first.ttl) in the same RRset (RFC 2181 §5.2); using \(first.ttl)",
                                isWarning: true))
                    }
                    data.append(UInt8(rd.count >> 8))
                    data.append(UInt8(rd.count & 0xFF))
                    data.append(contentsOf: rd)
                    count += 1
                }
                if count > 65535 {
                    let (file, line) = sourceLine(first)
                    problems.append(ZoneError(file: file, line: line, message: "RRset has more than 65535 records"))
                }
                rrsets.append(
                    Zone.RRset(
                        type: type, count: UInt16(truncatingIfNeeded: count), ttl: first.ttl,
                        dataStart: start, dataEnd: UInt32(data.count)))
                types.append(type)
                let (file, line) = sourceLine(first)
                switch type {
                case RRType.soa:
                    if node != apex {
                        problems.append(
                            ZoneError(file: file, line: line, message: "SOA is only allowed at the zone apex"))
                    } else if count != 1 {
                        problems.append(
                            ZoneError(file: file, line: line, message: "more than one SOA record at the apex"))
                    } else {
                        soaRRset = rrsets.count - 1
                        serial = soaSerial(Array(list.rdata(first))) ?? 0
                    }
                case RRType.cname:
                    table.nodes[node].flags |= Zone.Flag.cname
                    if count > 1 {
                        problems.append(ZoneError(file: file, line: line, message: "more than one CNAME at one name"))
                    }
                case RRType.dname:
                    table.nodes[node].flags |= Zone.Flag.dname
                    if count > 1 {
                        problems.append(ZoneError(file: file, line: line, message: "more than one DNAME at one name"))
                    }
                case RRType.ns where node != apex:
                    table.nodes[node].flags |= Zone.Flag.delegation
                default: break
                }
                i = j
            }
            table.nodes[node].rrsetCount = UInt32(rrsets.count) - table.nodes[node].rrsetStart
            // RFC 2181 §10.1: a CNAME may not coexist with other data (DNSSEC types aside).
            if types.contains(RRType.cname),
                types.contains(where: { ![RRType.cname, RRType.rrsig, RRType.nsec].contains($0) })
            {
                let (file, line) = sourceLine(list.entries[entries.first { list.entries[$0].type == RRType.cname }!])
                problems.append(
                    ZoneError(
                        file: file, line: line,
                        message:
                            "CNAME at \(Name.toText(Array(table.name(node)))) beside other data"))
            }
            if node == apex && types.contains(RRType.cname) {
                let (file, line) = sourceLine(list.entries[entries[0]])
                problems.append(ZoneError(file: file, line: line, message: "CNAME at the zone apex"))
            }
        }
        if soaRRset < 0 {
            problems.append(
                ZoneError(file: mainFile, line: 1, message: "no SOA record at the apex \(Name.toText(origin))"))
        }
        let apexTypes =
            table.nodes[apex].rrsetCount == 0
            ? []
            : (Int(table.nodes[apex].rrsetStart)..<Int(table.nodes[apex].rrsetStart + table.nodes[apex].rrsetCount)).map
            { rrsets[$0].type }
        if !apexTypes.contains(RRType.ns) {
            problems.append(
                ZoneError(file: mainFile, line: 1, message: "no NS records at the apex \(Name.toText(origin))"))
        }
        table.nodes[apex].flags |= Zone.Flag.apex
        for n in steeredNodes { table.nodes[n].flags |= Zone.Flag.steered }

        // Occlusion and wildcard flags need every node in place: walk each node's ancestors.
        let originLabels = Name.labelCount(origin)
        for node in 0..<table.nodes.count where node != apex {
            let name = table.name(node)
            let base = name.startIndex
            if name[base] == 1 && name[base + 1] == UInt8(ascii: "*") {
                let parent = table.find(name[(base + 2)...])
                if parent >= 0 { table.nodes[parent].flags |= Zone.Flag.wildcardChild }
            }
            var offset = base + Int(name[base]) + 1
            var labels = labelCount(name) - 1
            while labels > originLabels {
                let ancestor = table.find(name[offset...])
                let f = ancestor >= 0 ? table.nodes[ancestor].flags : 0
                if f & (Zone.Flag.delegation | Zone.Flag.dname) != 0 {
                    table.nodes[node].flags |= Zone.Flag.occluded
                    let n = table.nodes[node]
                    for r in Int(n.rrsetStart)..<Int(n.rrsetStart + n.rrsetCount) {
                        let t = rrsets[r].type
                        let isGlue = f & Zone.Flag.delegation != 0 && (t == RRType.a || t == RRType.aaaa)
                        if !isGlue {
                            let e = list.entries[firstEntry(heads[node], next, list, type: t)]
                            let (file, line) = sourceLine(e)
                            let what = f & Zone.Flag.dname != 0 ? "DNAME" : "delegation"
                            problems.append(
                                ZoneError(
                                    file: file, line: line,
                                    message:
                                        "\(Name.toText(Array(name))) \(RRType.name(t)) is below the \(what) at \(Name.toText(Array(name[offset...]))) (only address glue is allowed below a delegation, nothing below a DNAME)"
                                ))
                        }
                    }
                    break
                }
                offset += Int(name[offset]) + 1
                labels -= 1
            }
        }
        let fatal = problems.contains { !$0.isWarning }
        if fatal { return (nil, problems) }
        let zone = Zone(
            origin: origin, names: table.names, nodes: table.nodes, rrsets: rrsets, data: data,
            table: table.slots, apex: apex, soa: soaRRset, serial: serial)
        return (zone, problems)
    }

    static func labelCount(_ name: ArraySlice<UInt8>) -> Int {
        var i = name.startIndex
        var n = 0
        while i < name.endIndex, name[i] != 0 {
            i += Int(name[i]) + 1
            n += 1
        }
        return n
    }

    static func firstEntry(_ head: Int32, _ next: [Int32], _ list: RecordList, type: UInt16) -> Int {
        var e = head
        var found = Int(head)
        while e >= 0 {
            if list.entries[Int(e)].type == type { found = Int(e) }
            e = next[Int(e)]
        }
        return found
    }

    static func soaSerial(_ rdata: [UInt8]) -> UInt32? {
        var i = 0
        for _ in 0..<2 {
            while i < rdata.count && rdata[i] != 0 { i += Int(rdata[i]) + 1 }
            i += 1
        }
        guard i + 4 <= rdata.count else { return nil }
        return rdata[i..<(i + 4)].reduce(0) { $0 << 8 | UInt32($1) }
    }
}

/// The growable open-addressing table used while building; its arrays become the `Zone`'s.
struct BuildTable {
    var names: [UInt8] = []
    var nodes: [Zone.Node] = []
    var slots: [Int32]

    init(expected: Int) {
        var size = 64
        while size < expected * 2 { size <<= 1 }
        slots = [Int32](repeating: -1, count: size)
        names.reserveCapacity(expected * 16)
        nodes.reserveCapacity(expected)
    }

    func name(_ node: Int) -> ArraySlice<UInt8> {
        let n = nodes[node]
        return names[Int(n.nameStart)..<(Int(n.nameStart) + Int(n.nameLength))]
    }

    func find(_ name: ArraySlice<UInt8>) -> Int {
        // Names here are already lower-case: compare raw octets.
        name.withUnsafeBytes { key in
            names.withUnsafeBytes { stored in
                slots.withUnsafeBufferPointer { table in
                    nodes.withUnsafeBufferPointer { nodes in
                        let mask = table.count - 1
                        var slot = Zone.hash(key) & mask
                        while true {
                            let idx = Int(table[slot])
                            if idx < 0 { return -1 }
                            let n = nodes[idx]
                            if Int(n.nameLength) == key.count
                                && memcmp(stored.baseAddress! + Int(n.nameStart), key.baseAddress!, key.count) == 0
                            {
                                return idx
                            }
                            slot = (slot + 1) & mask
                        }
                    }
                }
            }
        }
    }

    /// Finds or inserts a lower-case name, inserting its ancestors down to `origin` as empty non-terminals.
    mutating func insert(_ name: ArraySlice<UInt8>, origin: [UInt8]) -> Int {
        let existing = find(name)
        if existing >= 0 { return existing }
        if name.count > origin.count {
            let parentStart = name.startIndex + Int(name[name.startIndex]) + 1
            _ = insert(name[parentStart...], origin: origin)
        }
        if (nodes.count + 1) * 2 > slots.count { grow() }
        let idx = nodes.count
        nodes.append(
            Zone.Node(
                nameStart: UInt32(names.count), nameLength: UInt16(name.count), flags: 0,
                rrsetStart: 0, rrsetCount: 0))
        names.append(contentsOf: name)
        place(idx)
        return idx
    }

    private mutating func place(_ idx: Int) {
        let n = nodes[idx]
        let h = names.withUnsafeBytes {
            Zone.hash(UnsafeRawBufferPointer(rebasing: $0[Int(n.nameStart)..<(Int(n.nameStart) + Int(n.nameLength))]))
        }
        var slot = h & (slots.count - 1)
        while slots[slot] >= 0 { slot = (slot + 1) & (slots.count - 1) }
        slots[slot] = Int32(idx)
    }

    private mutating func grow() {
        slots = [Int32](repeating: -1, count: slots.count * 2)
        for i in 0..<nodes.count { place(i) }
    }
}
