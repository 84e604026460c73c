public import DNSWire
import Glibc
import Steering

/// Responses to recent UDP queries, per receive loop (one thread, no locks), reused for a query
/// whose octets after the ID are the same as an earlier one's.
///
/// Only what the engine would answer again byte for byte is kept (`ResponseInfo`): a load-balanced
/// answer drawn at random, or from a slow-start ramp, is computed afresh every time; one that
/// depends on the source address (no ECS) is reused only for sources in the same location network
/// (the ECS scope the answer would carry); one whose TTL rises when a pool settles only until then.
/// Every entry belongs to one snapshot: a reload or any health or admin change starts afresh.
/// A reused response counts in every metric exactly as a computed one.
///
/// Direct-mapped: a slot per hash, the newest response wins it. The hash has a per-process seed,
/// and the whole key is compared, so a collision costs a miss, never a wrong answer.
///
/// An answer that depends on the client through its location class alone (`ResponseInfo.locationClass`)
/// is kept once per class, not per network: a query from anywhere (its ECS address, or its source)
/// is located in the snapshot's location table, and the entry of its class answers it, with its
/// own network's depth as the ECS scope. With ECS from clients all over the address space, the
/// hits then come from a handful of classes instead of tens of thousands of networks. This needs
/// the location-dependent names to share one location table per family (`locateShared`).
///
/// When queries hardly ever repeat (each in a location network and class of its own),
/// looking up and keeping responses costs more than the rare hit saves. The cache
/// counts its hits over windows of `window` lookups; below one hit in `lowHitRate` it takes only
/// every `sampleEvery`th query, and goes back to all of them once a window of those hits again.
public final class AnswerCache {
    /// Octets of a query after its ID that can be a key: a question and an OPT with ECS fit.
    static let maxKey = 160
    /// Octets of a response that can be kept.
    static let maxResponse = 864
    static let slotSize = maxKey + maxResponse

    struct Entry {
        var hash: UInt64 = 0
        var epoch: UInt32 = 0
        var keyLength: UInt16 = 0
        var responseLength: UInt16 = 0
        var qtype: UInt16 = 0
        var ecs = false
        /// 0: keyed by the whole query. n > 0: keyed without the n address octets of the query's
        /// trailing ECS option, and `family`/`high`/`low`/`sourceBits` is the ECS network it covers.
        var ecsLength: UInt8 = 0
        /// -1: any client; else the client (the source, or the ECS address when `ecsLength` > 0)
        /// must be of `family` and in `high`/`low` over `sourceBits`.
        var sourceBits: Int16 = -1
        var family: UInt8 = 0
        var high: UInt64 = 0
        var low: UInt64 = 0
        var stableUntil: UInt64 = .max
        var counted = AnswerCount()
        /// ≥ 0: kept for every client of this location class (of `family`), under the class key.
        var locationClass: Int32 = -1
    }

    /// The size asked for (`answer-cache`), and the slots that gives (a power of two, or 0).
    public let requested: Int
    let slots: Int
    private let mask: Int
    private let entries: UnsafeMutablePointer<Entry>
    /// Per slot of a query's own key, that key's hash when some class of it was kept under the
    /// class key: only those queries are located before the engine runs.
    private let classKeyed: UnsafeMutablePointer<UInt64>
    private let storage: UnsafeMutableRawPointer
    private let seed: UInt64
    private let metrics: QueryMetrics
    /// What changes per query, behind a pointer: no exclusivity check per access.
    struct State {
        /// Entries of another epoch are empty: a new snapshot bumps it.
        var epoch: UInt32 = 1
        /// The snapshot's answer counters, borrowed: `snapshot` holds them.
        var counters: Unmanaged<AnswerCounters>? = nil
        /// The snapshot's steering table, borrowed likewise, for the class key.
        var table: Unmanaged<SteeringTable>? = nil
        var hits = 0
        var misses = 0
        /// Queries passed straight to the engine while sampling.
        var skipped = 0
        /// 1: every query goes through the cache; `sampleEvery`: one in that many.
        var every = 1
        var tick = 0
        var windowLookups = 0
        var windowHits = 0
    }
    public static let window = 1024
    static let lowHitRate = 16
    public static let sampleEvery = 16
    private let state: UnsafeMutablePointer<State>
    private var snapshot: Snapshot? = nil
    /// This loop's own counts (the metrics count all loops).
    public var hits: Int { state.pointee.hits }
    public var misses: Int { state.pointee.misses }
    public var skipped: Int { state.pointee.skipped }
    /// Whether the cache is sampling one query in `sampleEvery` (its hit rate was low).
    public var sampling: Bool { state.pointee.every > 1 }

    /// `slots` is rounded up to a power of two; 0 turns the cache off.
    public init(slots requested: Int, metrics: QueryMetrics) {
        self.metrics = metrics
        self.requested = requested
        var n = 1
        while n < requested { n <<= 1 }
        slots = requested > 0 ? n : 0
        mask = max(0, slots - 1)
        entries = .allocate(capacity: max(1, slots))
        entries.initialize(repeating: Entry(), count: max(1, slots))
        classKeyed = .allocate(capacity: max(1, slots))
        classKeyed.initialize(repeating: 0, count: max(1, slots))
        storage = .allocate(byteCount: max(1, slots) * Self.slotSize, alignment: 16)
        seed = UInt64.random(in: .min ... .max)
        state = .allocate(capacity: 1)
        state.initialize(to: State())
    }

    deinit {
        state.deinitialize(count: 1)
        state.deallocate()
        entries.deinitialize(count: max(1, slots))
        entries.deallocate()
        classKeyed.deallocate()
        storage.deallocate()
    }

    /// Forgets every entry when `current` is not the snapshot they were computed from.
    @inline(__always)
    public func use(_ current: Snapshot) {
        guard current !== snapshot else { return }
        snapshot = current
        state.pointee.counters = current.steering.map { Unmanaged.passUnretained($0.counters) }
        state.pointee.table = current.steering.map { Unmanaged.passUnretained($0.table) }
        state.pointee.epoch &+= 1
        if state.pointee.epoch == 0 {  // after 2^32 snapshots: clear for real rather than meet old entries again
            for i in 0..<max(1, slots) { entries[i].epoch = 0 }
            state.pointee.epoch = 1
        }
        // Hints of the old snapshot would only cost a lookup that misses; cleared all the same.
        classKeyed.update(repeating: 0, count: max(1, slots))
    }

    /// Answers `packet` from the cache or from `engine`, keeping the engine's response when it
    /// may be reused. `now` is the monotonic clock in nanoseconds.
    ///
    /// Two keys: the query's octets after the ID; and, for a query whose last option is ECS, the
    /// same octets without the ECS address, so that every client subnet of one location network
    /// shares an entry (the response's trailing address octets are then the query's own).
    @inline(__always)
    public func respond(
        engine: QueryEngine, to packet: UnsafeRawBufferPointer, into out: UnsafeMutableRawPointer,
        capacity: Int, client: ClientAddress, now: UInt64
    ) -> Int {
        let keyLength = packet.count - 2
        guard slots > 0, keyLength >= 10, keyLength <= Self.maxKey, capacity >= Self.maxResponse else {
            return engine.respond(to: packet, into: out, capacity: capacity, transport: .udp, client: client, now: now)
        }
        if state.pointee.every > 1 {
            state.pointee.tick &+= 1
            if state.pointee.tick & (state.pointee.every - 1) != 0 {  // `sampleEvery` is a power of two
                metrics.record(.cacheSkip)
                state.pointee.skipped += 1
                return engine.respond(
                    to: packet, into: out, capacity: capacity, transport: .udp, client: client, now: now)
            }
        }
        let key = packet.baseAddress! + 2
        let ecs = Self.trailingClientSubnet(packet)
        let n = ecs?.addressLength ?? 0
        let family = ecs.map { $0.family == 1 ? 4 : 6 } ?? Int(client.family)
        let (high, low) = ecs.map { ($0.high, $0.low) } ?? client.octets
        if let table = state.pointee.table {
            // The class key below may locate the client: its first table line starts loading now.
            table._withUnsafeGuaranteedRef { $0.prefetch(clientFamily: family, high: high) }
        }
        // The whole key; for a query ending in ECS it is looked up last (such queries are kept
        // under it only when their response does not echo the address last).
        var hash: UInt64 = 0
        var slot = 0
        if ecs == nil {
            (hash, slot) = wholeKey(key, keyLength)
            if lookupExact(hash: hash, slot: slot, key: key, keyLength: keyLength, client: client, now: now) {
                return reuse(
                    entries + slot, slot: slot, packet: packet, into: out, capacity: capacity, addressLength: 0)
            }
        }
        // The ECS key: the address octets of a trailing ECS option left out.
        var ecsSlot = -1
        var ecsHash: UInt64 = 0
        if let ecs {
            ecsHash = Self.hash(key, keyLength - n, seed: ~seed)
            ecsSlot = Int(truncatingIfNeeded: ecsHash) & mask
            let e2 = entries + ecsSlot
            if e2.pointee.matches(hash: ecsHash, keyLength: keyLength - n, epoch: state.pointee.epoch, now: now)
                && Int(e2.pointee.ecsLength) == n
                && memcmp(storage + ecsSlot * Self.slotSize, key, keyLength - n) == 0
                && e2.pointee.covers(family: UInt8(family), high: ecs.high, low: ecs.low)
            {
                return reuse(e2, slot: ecsSlot, packet: packet, into: out, capacity: capacity, addressLength: n)
            }
        }
        // The class key: the key above (without the ECS address when there is one) and the class
        // of the client in the shared location table.
        let baseHash = ecs != nil ? ecsHash : hash
        let baseSlot = ecs != nil ? ecsSlot : slot
        var located: (cls: Int, depth: Int)? = nil
        if classKeyed[baseSlot] == baseHash, let table = state.pointee.table {
            located = table._withUnsafeGuaranteedRef { $0.locateShared(clientFamily: family, high: high, low: low) }
            if let located {
                let classHash = Self.classHash(baseHash, located.cls)
                let classSlot = Int(truncatingIfNeeded: classHash) & mask
                let e3 = entries + classSlot
                if e3.pointee.matches(hash: classHash, keyLength: keyLength - n, epoch: state.pointee.epoch, now: now)
                    && e3.pointee.locationClass == Int32(located.cls) && Int(e3.pointee.family) == family
                    && Int(e3.pointee.ecsLength) == n
                    && memcmp(storage + classSlot * Self.slotSize, key, keyLength - n) == 0
                {
                    return reuse(
                        e3, slot: classSlot, packet: packet, into: out, capacity: capacity, addressLength: n,
                        scope: n > 0 ? min(located.depth, family == 4 ? 32 : 128) : -1)
                }
            }
        }
        if ecs != nil {
            (hash, slot) = wholeKey(key, keyLength)
            if lookupExact(hash: hash, slot: slot, key: key, keyLength: keyLength, client: client, now: now) {
                return reuse(
                    entries + slot, slot: slot, packet: packet, into: out, capacity: capacity, addressLength: 0)
            }
        }
        var info = ResponseInfo()
        let length = engine.respond(
            to: packet, into: out, capacity: capacity, transport: .udp, client: client,
            info: &info, now: now)
        metrics.record(.cacheMiss)
        state.pointee.misses += 1
        endOfLookup(hit: false)
        guard info.repeatable, length >= 12, length <= Self.maxResponse, info.stableUntil * 1e9 > Double(now) else {
            return length
        }
        var entry = Entry()
        entry.epoch = state.pointee.epoch
        entry.responseLength = UInt16(length)
        entry.qtype = info.qtype
        entry.ecs = info.ecs
        entry.stableUntil = info.stableUntil.isFinite ? UInt64(info.stableUntil * 1e9) : .max
        entry.counted = info.counted
        if info.locationClass >= 0, let table = state.pointee.table {
            if located == nil {
                located = table._withUnsafeGuaranteedRef { $0.locateShared(clientFamily: family, high: high, low: low) }
            }
            // Kept per class when the decision's class is this table's class of the client, the
            // response read the client the way the key says (the ECS address, echoed last after its
            // scope, or the source), and the scope is that network's depth.
            if let located, located.cls == Int(info.locationClass),
                ecs != nil
                    ? (info.ecsAddressLength == n && info.sourceBits < 0 && length > n
                        && memcmp(out + (length - n), packet.baseAddress! + (packet.count - n), n) == 0
                        && Int(out.load(fromByteOffset: length - n - 1, as: UInt8.self))
                            == min(located.depth, family == 4 ? 32 : 128))
                    : info.sourceBits >= 0
            {
                let classHash = Self.classHash(baseHash, located.cls)
                entry.hash = classHash
                entry.keyLength = UInt16(keyLength - n)
                entry.ecsLength = UInt8(n)
                entry.family = UInt8(family)
                entry.locationClass = info.locationClass
                store(entry, slot: Int(truncatingIfNeeded: classHash) & mask, key: key, response: out)
                classKeyed[baseSlot] = baseHash
                return length
            }
        }
        if let ecs, info.ecsAddressLength == n, info.sourceBits < 0,
            memcmp(out + (length - n), packet.baseAddress! + (packet.count - n), n) == 0
        {
            // The answer read the ECS address (not the source) and echoes it last: keyed without it.
            let family: UInt8 = ecs.family == 1 ? 4 : 6
            let bits = min(info.clientBits, family == 4 ? 32 : 128)
            entry.hash = ecsHash
            entry.keyLength = UInt16(keyLength - n)
            entry.ecsLength = UInt8(n)
            entry.sourceBits = Int16(bits)
            entry.family = family
            (entry.high, entry.low) = Self.network(ecs.high, ecs.low, bits: bits)
            store(entry, slot: ecsSlot, key: key, response: out)
            return length
        }
        entry.hash = hash
        entry.keyLength = UInt16(keyLength)
        if info.sourceBits >= 0 {
            let bits = min(info.sourceBits, client.family == 4 ? 32 : 128)
            entry.sourceBits = Int16(bits)
            entry.family = client.family
            (entry.high, entry.low) = Self.network(client.octets.0, client.octets.1, bits: bits)
        }
        store(entry, slot: slot, key: key, response: out)
        return length
    }

    /// The whole key's hash and slot.
    @inline(__always)
    private func wholeKey(_ key: UnsafeRawPointer, _ keyLength: Int) -> (UInt64, Int) {
        let hash = Self.hash(key, keyLength, seed: seed)
        return (hash, Int(truncatingIfNeeded: hash) & mask)
    }

    /// Whether the whole key's entry answers a query from `client`.
    @inline(__always)
    private func lookupExact(
        hash: UInt64, slot: Int, key: UnsafeRawPointer, keyLength: Int, client: ClientAddress,
        now: UInt64
    ) -> Bool {
        let e = entries + slot
        return e.pointee.matches(hash: hash, keyLength: keyLength, epoch: state.pointee.epoch, now: now)
            && memcmp(storage + slot * Self.slotSize, key, keyLength) == 0 && e.pointee.covers(client)
    }

    /// Sends a kept response: the query's ID, and its ECS address octets where the entry left them out.
    @inline(__always)
    private func reuse(
        _ e: UnsafeMutablePointer<Entry>, slot: Int, packet: UnsafeRawBufferPointer,
        into out: UnsafeMutableRawPointer, capacity: Int, addressLength n: Int, scope: Int = -1
    ) -> Int {
        let length = Int(e.pointee.responseLength)
        out.copyMemory(from: storage + slot * Self.slotSize + Self.maxKey, byteCount: length)
        out.copyMemory(from: packet.baseAddress!, byteCount: 2)
        if n > 0 { (out + (length - n)).copyMemory(from: packet.baseAddress! + (packet.count - n), byteCount: n) }
        if scope >= 0 { out.storeBytes(of: UInt8(scope), toByteOffset: length - n - 1, as: UInt8.self) }
        metrics.recordCached(
            rcode: out.load(fromByteOffset: 3, as: UInt8.self), qtype: e.pointee.qtype, ecs: e.pointee.ecs)
        state.pointee.hits += 1
        endOfLookup(hit: true)
        if e.pointee.counted.name >= 0, let counters = state.pointee.counters {
            counters._withUnsafeGuaranteedRef { e.pointee.counted.replay(in: $0) }
        }
        return length
    }

    /// Counts a lookup in the current window; at its end, samples or stops sampling by its hit rate.
    @inline(__always)
    private func endOfLookup(hit: Bool) {
        let s = state
        s.pointee.windowLookups &+= 1
        if hit { s.pointee.windowHits &+= 1 }
        guard s.pointee.windowLookups == Self.window else { return }
        s.pointee.every = s.pointee.windowHits * Self.lowHitRate < Self.window ? Self.sampleEvery : 1
        s.pointee.windowLookups = 0
        s.pointee.windowHits = 0
    }

    @inline(__always)
    private func store(_ entry: Entry, slot: Int, key: UnsafeRawPointer, response: UnsafeRawPointer) {
        let base = storage + slot * Self.slotSize
        base.copyMemory(from: key, byteCount: Int(entry.keyLength))
        (base + Self.maxKey).copyMemory(from: response, byteCount: Int(entry.responseLength))
        entries[slot] = entry
    }

    /// The ECS option a packet ends with, when it does and is well formed with a non-zero source
    /// prefix and scope 0: `… 00 08 LL LL` and the option data, parsed as the query parser parses
    /// it (`ClientSubnet.parse`). Anything else is left to the parser, through the exact key.
    @inline(__always)
    static func trailingClientSubnet(_ p: UnsafeRawBufferPointer) -> ClientSubnet? {
        let count = p.count
        // Header, a root question and an OPT with this option at least; ARCOUNT ≥ 1.
        guard count >= 12 + 5 + 11 + 9, p[10] | p[11] != 0 else { return nil }
        for n in 1...16 {
            let at = count - n - 8
            guard p[at] == 0, p[at + 1] == 8, p[at + 2] == 0, Int(p[at + 3]) == n + 4 else { continue }
            guard let ecs = ClientSubnet.parse(UnsafeRawBufferPointer(rebasing: p[(at + 4)...])),
                ecs.sourcePrefix > 0, ecs.scopePrefix == 0
            else { return nil }
            return ecs
        }
        return nil
    }

    /// The class key's hash: the query's key hash and the class, mixed.
    @inline(__always)
    static func classHash(_ base: UInt64, _ cls: Int) -> UInt64 {
        var h = (base ^ UInt64(truncatingIfNeeded: cls &+ 1) &* 0x9E37_79B9_7F4A_7C15) &* 0xBF58_476D_1CE4_E5B9
        h ^= h >> 31
        return h
    }

    /// The first `bits` bits of an address.
    @inline(__always)
    static func network(_ high: UInt64, _ low: UInt64, bits: Int) -> (UInt64, UInt64) {
        let (mh, ml) = Prefix.mask(length: bits)
        return (high & mh, low & ml)
    }

    /// 64-bit words through a multiply-xorshift; the tail folded in last.
    @inline(__always)
    static func hash(_ p: UnsafeRawPointer, _ n: Int, seed: UInt64) -> UInt64 {
        var h = seed ^ UInt64(n) &* 0x9E37_79B9_7F4A_7C15
        var i = 0
        while i + 8 <= n {
            h = (h ^ p.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0xBF58_476D_1CE4_E5B9
            h ^= h >> 29
            i += 8
        }
        var tail: UInt64 = 0
        if i < n && n >= 8 {
            // The last 8 octets in one load, shifted so that only the n - i not yet hashed remain.
            tail =
                p.loadUnaligned(fromByteOffset: n - 8, as: UInt64.self) >> UInt64(truncatingIfNeeded: (8 - (n - i)) * 8)
        } else {
            while i < n {
                tail = tail << 8 | UInt64(p.load(fromByteOffset: i, as: UInt8.self))
                i += 1
            }
        }
        h = (h ^ tail) &* 0x94D0_49BB_1331_11EB
        return h ^ (h >> 31)
    }
}

extension AnswerCache.Entry {
    @inline(__always)
    func matches(hash h: UInt64, keyLength n: Int, epoch now: UInt32, now time: UInt64) -> Bool {
        epoch == now && hash == h && Int(keyLength) == n && time < stableUntil
    }

    /// Whether a query from `client` (the exact key's entries) may have this response.
    @inline(__always)
    func covers(_ client: ClientAddress) -> Bool {
        ecsLength == 0 && covers(family: client.family, high: client.octets.0, low: client.octets.1)
    }

    @inline(__always)
    func covers(family f: UInt8, high h: UInt64, low l: UInt64) -> Bool {
        // A class entry answers only through the class key, which checks the client's class.
        guard locationClass < 0 else { return false }
        guard sourceBits >= 0 else { return true }
        let (mh, ml) = AnswerCache.network(h, l, bits: Int(sourceBits))
        return f == family && mh == high && ml == low
    }
}
