public import DNSWire
import Steering
public import Zones

/// Answers one query from an immutable snapshot, writing the response into a caller's buffer.
///
/// The engine is authoritative only (RFC 1034 §4.3.2, never recursive). It never throws and never
/// allocates on the query path: failures become rcodes. A response length of 0 means "send nothing".
public struct QueryEngine: Sendable {
    public let zones: ZoneSet
    /// Options in a box of their own, so a response borrows them instead of copying arrays and strings.
    let box: OptionsBox
    public var options: EngineOptions { box.options }

    /// Load-balanced names and their health; nil when the config declares none.
    public let steering: SteeringRuntime?
    /// The same, unretained, for the query path (`steering` keeps it alive).
    let steeringRef: Unmanaged<SteeringRuntime>?
    /// For `explain`: the randomness of load-balanced decisions, fixed so the answer shown matches the trace.
    public var fixedRandom: UInt64? = nil

    /// The server's query counters (`Snapshot.metrics`).
    public let metrics: QueryMetrics

    public init(zones: ZoneSet, options: EngineOptions, steering: SteeringRuntime? = nil, metrics: QueryMetrics) {
        self.metrics = metrics
        self.zones = zones
        self.box = OptionsBox(options)
        self.steering = steering
        steeringRef = steering.map { Unmanaged.passUnretained($0) }
    }

    /// At most this many CNAMEs (written or synthesized from a DNAME) in one answer, as knot's
    /// CNAME_CHAIN_MAX: the last one is written but not followed. Loops end here or earlier.
    static let maxChain = 5

    /// Answers `packet` into `out` (at least 512 octets; 65535 for TCP). Returns the response length.
    /// `now` is the monotonic clock in nanoseconds when the caller has read it (the UDP loop, once
    /// per batch), else 0: load-balanced decisions then read it themselves.
    public func respond(
        to packet: UnsafeRawBufferPointer, into out: UnsafeMutableRawPointer, capacity: Int,
        transport: Transport, client: ClientAddress, now: UInt64 = 0
    ) -> Int {
        var info = ResponseInfo()
        return respond(
            to: packet, into: out, capacity: capacity, transport: transport, client: client, info: &info,
            now: now)
    }

    /// As above, and says in `info` what else than the query's bytes the response depends on.
    public func respond(
        to packet: UnsafeRawBufferPointer, into out: UnsafeMutableRawPointer, capacity: Int,
        transport: Transport, client: ClientAddress, info: inout ResponseInfo, now: UInt64 = 0
    ) -> Int {
        var query = Query()
        switch QueryParser.parse(packet, into: &query) {
        case .drop:
            info.repeatable = false
            return 0
        case .error(var rcode, let questionParsed):
            info.repeatable = false  // answered as cheaply as a cached copy; not worth a slot
            // A query for a server cookie alone (RFC 7873 §5.4) is malformed to a server without cookies.
            if rcode == Rcode.noError && box.options.cookieSecret == nil { rcode = Rcode.formErr }
            let n = errorResponse(
                packet, query, rcode: rcode, withQuestion: questionParsed, into: out,
                capacity: capacity, transport: transport, client: client)
            metrics.record(
                transport: transport, rcode: UInt8(rcode & 0xF), qtype: query.qtype,
                ecs: query.clientSubnet != nil)
            return n
        case .query:
            info.qtype = query.qtype
            info.ecs = query.clientSubnet != nil
            info.ecsAddressLength = query.clientSubnet?.addressLength ?? -1
            let n = answer(
                packet, query, into: out, capacity: capacity, transport: transport, client: client, info: &info,
                now: now)
            if n >= 4 {
                metrics.record(
                    transport: transport, rcode: out.load(fromByteOffset: 3, as: UInt8.self),
                    qtype: query.qtype, ecs: query.clientSubnet != nil)
            }
            return n
        }
    }

    /// The size the response may take (RFC 1035 §4.2.1, RFC 6891 §6.2.5).
    @inline(__always)
    func sizeLimit(_ q: Query, capacity: Int, transport: Transport) -> Int {
        switch transport {
        case .tcp: return min(capacity, WireLimits.maxMessageSize)
        case .udp:
            let wanted =
                q.hasEDNS
                ? max(WireLimits.classicUDPSize, min(Int(q.ednsPayload), box.pointer.pointee.maxUDPPayload))
                : WireLimits.classicUDPSize
            return min(capacity, wanted)
        }
    }

    /// A response with only the header (and the question, when asked): for rcodes decided outside
    /// the engine, such as a refused transfer over TCP.
    public func errorResponse(
        _ packet: UnsafeRawBufferPointer, _ q: Query, rcode: UInt16, withQuestion: Bool,
        into out: UnsafeMutableRawPointer, capacity: Int, transport: Transport,
        client: ClientAddress
    ) -> Int {
        var w = MessageWriter(base: out, limit: sizeLimit(q, capacity: capacity, transport: transport))
        let flags = HeaderFlags.qr | (q.flags & (0x7800 | HeaderFlags.rd))
        guard w.writeHeader(id: q.id, flags: flags) else { return 0 }
        if withQuestion {
            let qlen = q.qnameLength + 4
            guard w.append(UnsafeRawBufferPointer(rebasing: packet[12..<(12 + qlen)])) else { return 0 }
            w.incrementCount(section: .question)
        }
        w.setRcode(rcode)
        if q.hasEDNS {
            var opt = OPTWriter(query: q, options: box.pointer, rcode: rcode)
            opt.includeClientSubnet = false
            let optAt = w.position
            if opt.write(&w) { appendCookie(&w, optAt: optAt, packet: packet, query: q, client: client) }
        }
        return w.position
    }

    func answer(
        _ packet: UnsafeRawBufferPointer, _ q: Query, into out: UnsafeMutableRawPointer, capacity: Int,
        transport: Transport, client: ClientAddress, info: inout ResponseInfo, now: UInt64
    ) -> Int {
        if let steeringRef, SteerContext.mayDecide(q) {
            // The location lookup a load-balanced answer makes is a cache miss when clients come from
            // everywhere: start it now, so it overlaps with writing the header and finding the name.
            let (family, high, _, _) = SteerContext.client(of: q, source: client)
            steeringRef._withUnsafeGuaranteedRef { $0.table.prefetch(clientFamily: family, high: high) }
        }
        let limit = sizeLimit(q, capacity: capacity, transport: transport)
        var w = MessageWriter(base: out, limit: limit)
        // RD is copied (RFC 1035 §4.1.1); CD is not, as knot and NSD leave it for resolvers.
        let flags = HeaderFlags.qr | (q.flags & HeaderFlags.rd)
        guard w.writeHeader(id: q.id, flags: flags) else { return 0 }
        let qname = UnsafeRawBufferPointer(rebasing: packet[12..<(12 + q.qnameLength)])
        guard w.append(UnsafeRawBufferPointer(rebasing: packet[12..<(q.questionEnd)])) else { return 0 }
        w.incrementCount(section: .question)
        w.registerName(at: 12)

        // RFC 6891 §6.1.3: an unsupported EDNS version gets BADVERS and nothing else.
        if q.hasEDNS && q.ednsVersion > 0 {
            let optAt = w.position
            if OPTWriter(query: q, options: box.pointer, rcode: Rcode.badVers).write(&w) {
                appendCookie(&w, optAt: optAt, packet: packet, query: q, client: client)
            }
            return w.position
        }
        var opt = OPTWriter(query: q, options: box.pointer, rcode: 0)
        if q.hasCookie { info.repeatable = false }  // the server cookie is made for this client, now
        let reserve = q.hasEDNS ? opt.size + cookieSize(q) : 0
        w.limit = limit - reserve

        var rcode = Rcode.noError
        switch q.qclass {
        case RRClass.in, RRClass.any:  // knot answers class ANY from its IN data
            var scope = 0
            rcode = answerInternet(
                qname: qname, q: q, transport: transport, client: client, scope: &scope, info: &info,
                now: now, writer: &w)
            // RFC 7871 §7.2.1: the scope of the answer; 0 when the query's source prefix was 0.
            if let ecs = q.clientSubnet, ecs.sourcePrefix > 0 {
                opt.scopePrefix = UInt8(min(scope, ecs.family == 1 ? 32 : 128))
            }
        case RRClass.ch:
            rcode = answerChaos(qname: qname, q: q, writer: &w)
        default:
            rcode = Rcode.refused
        }
        w.setRcode(rcode)
        w.limit = limit
        if q.hasEDNS {
            opt.rcode = rcode
            let optAt = w.position
            if opt.write(&w) && q.hasCookie { appendCookie(&w, optAt: optAt, packet: packet, query: q, client: client) }
        }
        return w.position
    }

    /// Class IN: find the zone and walk it.
    func answerInternet(
        qname: UnsafeRawBufferPointer, q: Query, transport: Transport, client: ClientAddress,
        scope: inout Int, info: inout ResponseInfo, now: UInt64, writer w: inout MessageWriter
    ) -> UInt16 {
        // Transfers need TCP (RFC 5936 §4.2); IXFR over UDP gets the SOA (RFC 1995 §2). Type 0 is
        // reserved: NOTIMP, as knot. Other meta-types find no data, as in knot.
        if q.qtype == RRType.axfr || q.qtype == RRType.ixfr {
            guard q.qtype == RRType.ixfr else { return Rcode.notImp }
            info.repeatable = false  // who asks decides the answer
            guard box.options.transferAllow.allows(client) else { return Rcode.refused }
            return ixfrOverUDP(qname: qname, writer: &w)
        }
        if q.qtype == 0 { return Rcode.notImp }
        let state = withUnsafeTemporaryAllocation(byteCount: Resolution.scratchSize, alignment: 8) {
            scratch -> (truncated: Bool, authoritative: Bool, rcode: UInt16)? in
            guard var zone = zones.zone(for: qname) else { return nil }
            // RFC 4035 §3.1.4.1: DS at a child apex belongs to the parent zone when we serve it.
            if q.qtype == RRType.ds && qname.count == zone.origin.count, let parent = zones.parent(of: zone) {
                zone = parent
            }
            w.setFlags(HeaderFlags.aa)
            // The found zone is handed over, not copied (one retain and release fewer per query).
            var state = Resolution(
                zone: consume zone, qtype: q.qtype, dnssecOK: q.dnssecOK, scratch: scratch.baseAddress!)
            if let steeringRef {
                state.steer.begin(query: q, client: client, runtime: steeringRef, now: now)
                state.steer.fixedRandom = fixedRandom
            }
            state.resolve(qname, writer: &w)
            if state.steer.decisions > 0 {
                scope = state.steer.scope
                info.note(state.steer)
            }
            return (truncated: state.truncated, authoritative: state.authoritative, rcode: state.rcode)
        }
        guard let state else { return Rcode.refused }
        // RFC 2181 §9: whole RRsets only, TC set; a resolver retries over TCP.
        if state.truncated { w.setFlags(HeaderFlags.tc) }
        if !state.authoritative { w.setU16(w.u16(at: 2) & ~HeaderFlags.aa, at: 2) }
        return state.rcode
    }

    /// IXFR over UDP: the SOA alone, telling the client to use TCP (RFC 1995 §2).
    func ixfrOverUDP(qname: UnsafeRawBufferPointer, writer w: inout MessageWriter) -> UInt16 {
        let labels = LabelOffsets(qname)
        guard let zone = zones.zone(for: qname, labels: labels),
            labels.count == zone.originLabels
        else { return Rcode.refused }
        w.setFlags(HeaderFlags.aa)
        let ok = withUnsafeTemporaryAllocation(byteCount: 256, alignment: 8) { scratch in
            var state = Resolution(zone: zone, qtype: RRType.soa, dnssecOK: false, scratch: scratch.baseAddress!)
            return state.writeRRset(zone.soa, owner: qname, section: .answer, writer: &w)
        }
        if !ok { w.setFlags(HeaderFlags.tc) }
        return Rcode.noError
    }

    /// Class CH: the server's identity and version as TXT (as BIND and knot answer them).
    func answerChaos(qname: UnsafeRawBufferPointer, q: Query, writer w: inout MessageWriter) -> UInt16 {
        let text: String?
        if ChaosNames.isIdentity(qname) {
            text = box.options.identity
        } else if ChaosNames.isVersion(qname) {
            text = box.options.version
        } else {
            return Rcode.refused
        }
        guard let text, !text.isEmpty else { return Rcode.refused }
        // Not authoritative data: knot leaves AA clear here.
        guard q.qtype == RRType.txt || q.qtype == RRType.any else { return Rcode.noError }
        var rdata: [UInt8] = []
        for chunk in Array(text.utf8).chunked(255) {
            rdata.append(UInt8(chunk.count))
            rdata += chunk
        }
        let ok = rdata.withUnsafeBytes { rd in
            w.writeRR(owner: qname, type: RRType.txt, rrClass: RRClass.ch, ttl: 0, rdata: rd)
        }
        if ok { w.incrementCount(section: .answer) } else { w.setFlags(HeaderFlags.tc) }
        return Rcode.noError
    }
}

extension Array {
    func chunked(_ n: Int) -> [ArraySlice<Element>] {
        if isEmpty { return [self[...]] }
        return stride(from: 0, to: count, by: n).map { self[$0..<Swift.min($0 + n, count)] }
    }
}

/// What a response depends on besides the query's own octets and the snapshot: the UDP answer
/// cache (`AnswerCache`) reuses a response only where it would be the same.
public struct ResponseInfo {
    /// False when the same query may get another response: a load-balanced pick drawn at random
    /// or from a slow-start ramp, more than one load-balanced decision, an answer decided by who
    /// asks (IXFR), or no answer.
    public var repeatable = true
    /// Leading bits of the source address the response depends on (its location network, a
    /// sticky prefix); -1 when it does not depend on the source.
    public var sourceBits = -1
    /// The same for the ECS address, when the decisions read that instead (0: they did not).
    public var clientBits = 0
    /// Octets of the query's ECS address; -1 without ECS.
    public var ecsAddressLength = -1
    /// Monotonic seconds until which the response stays the same under the same snapshot.
    public var stableUntil = Double.infinity
    /// The answer counters the response bumped.
    public var counted = AnswerCount()
    /// What the query metrics counted besides transport and rcode.
    public var qtype: UInt16 = 0
    public var ecs = false
    /// The client's location class when the response depends on the client through that alone
    /// (one load-balanced decision, `Decision.locationClass`), else -1: every client of the class
    /// gets this response, with its own network's depth as the ECS scope.
    public var locationClass: Int32 = -1

    public init() {}

    mutating func note(_ s: SteerContext) {
        if s.decisions > 1 || !s.repeatable { repeatable = false }
        stableUntil = s.stableUntil
        if s.fromSource { sourceBits = s.clientBits } else { clientBits = s.clientBits }
        counted = s.counted
        locationClass = s.decisions == 1 ? s.locationClass : -1
    }
}

/// Engine options at a stable address for the engine's lifetime.
final class OptionsBox: Sendable {
    let options: EngineOptions
    nonisolated(unsafe) let pointer: UnsafeMutablePointer<EngineOptions>

    init(_ options: EngineOptions) {
        self.options = options
        pointer = .allocate(capacity: 1)
        pointer.initialize(to: options)
    }

    deinit {
        pointer.deinitialize(count: 1)
        pointer.deallocate()
    }
}

/// The CH-class names knot and BIND answer.
enum ChaosNames {
    static let identity: [[UInt8]] = ["id.server.", "hostname.bind."].map { Name.fromText($0)! }
    static let version: [[UInt8]] = ["version.server.", "version.bind."].map { Name.fromText($0)! }

    static func isIdentity(_ n: UnsafeRawBufferPointer) -> Bool {
        identity.contains { $0.withUnsafeBytes { Name.equal($0, n) } }
    }

    static func isVersion(_ n: UnsafeRawBufferPointer) -> Bool {
        version.contains { $0.withUnsafeBytes { Name.equal($0, n) } }
    }
}
