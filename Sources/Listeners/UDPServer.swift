import CLodestarSys
package import DNSWire
package import Engine
import Foundation
package import Logging
import Protection
import Synchronization

/// The UDP hot loop: per address, one receive loop per core on its own SO_REUSEPORT socket, each
/// taking up to 64 datagrams per `recvmmsg` and answering them with one `sendmmsg`.
///
/// Responses are built in place in preallocated buffers, or copied from the loop's `AnswerCache`;
/// the snapshot is read once per batch.
package final class UDPServer: Sendable {
    /// Datagrams per system call: 64 amortises the syscall without adding visible latency.
    static let batchSize: UInt32 = 64
    /// Per-datagram buffer: a query larger than this is truncated by the kernel and answered FORMERR.
    static let bufferSize: UInt32 = 4096
    /// How often a blocked loop wakes to see whether it should stop.
    static let wakeMilliseconds: Int32 = 200

    let store: SnapshotStore
    let logger: Logger
    /// Shared by every loop: one bucket per source prefix, whatever loop its datagrams reach.
    let limiter = RateLimiter()
    /// Seconds between two log lines about rate limiting from one loop.
    static let limitLogSeconds: UInt64 = 10
    /// Whether a response still too large after answering it again smaller was logged (once).
    static let tooBigLogged = Atomic<Bool>(false)
    /// Dropped PROXY datagrams, logged at most every 10 s.
    let throttle: LogThrottle
    let stopping = Atomic<Bool>(false)
    let running = Atomic<Int>(0)
    private let sockets: Mutex<[Int32]> = Mutex([])
    let workers: Int

    package init(store: SnapshotStore, workers: Int, logger: Logger) {
        self.store = store
        self.logger = logger
        self.throttle = LogThrottle(logger: logger)
        self.workers = workers > 0 ? workers : max(1, ProcessInfo.processInfo.activeProcessorCount)
    }

    /// One per loop: how many times it has gone round (a batch, or a 200 ms wake), for the
    /// systemd watchdog's question "are the UDP loops alive".
    final class Beat: Sendable {
        let count = Atomic<UInt64>(0)
        let seen = Atomic<UInt64>(0)
    }
    private let beats: Mutex<[Beat]> = Mutex([])

    /// Binds every address (failing loudly), before privileges are dropped; `run` starts the loops.
    package func open(_ addresses: [ListenAddress]) throws {
        var fds: [Int32] = []
        do {
            for address in addresses {
                for _ in 0..<workers { fds.append(try Self.bind(address)) }
            }
        } catch {
            for fd in fds { close(fd) }
            throw error
        }
        sockets.withLock { $0 = fds }
    }

    /// Starts a loop on every socket `open` bound.
    package func start() {
        let fds = sockets.withLock { $0 }
        for fd in fds {
            let beat = Beat()
            beats.withLock { $0.append(beat) }
            running.add(1, ordering: .relaxed)
            let thread = Thread { [self] in
                self.loop(fd, beat)
                self.running.subtract(1, ordering: .relaxed)
            }
            thread.name = "udp-\(fd)"
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    /// Whether every loop has gone round since the last call (each wakes at least every 200 ms).
    package func loopsAlive() -> Bool {
        let all = beats.withLock { $0 }
        var alive = !all.isEmpty && running.load(ordering: .relaxed) == all.count
        for b in all {
            let now = b.count.load(ordering: .relaxed)
            if now == b.seen.exchange(now, ordering: .relaxed) { alive = false }
        }
        return alive
    }

    /// A bound UDP socket for `address`, set up as the loops use it.
    package static func bind(_ address: ListenAddress) throws -> Int32 {
        let fd: Int32 = address.withSockaddr { sa, len in lodestar_udp_socket(sa, len, wakeMilliseconds) }
        guard fd >= 0 else {
            throw ListenerError("cannot listen on UDP \(address): \(String(cString: strerror(-fd)))")
        }
        return fd
    }

    package func stop() {
        stopping.store(true, ordering: .relaxed)
        let deadline = Date().addingTimeInterval(2)
        while running.load(ordering: .relaxed) > 0 && Date() < deadline { usleep(10_000) }
        for fd in sockets.withLock({ $0 }) { close(fd) }
    }

    func loop(_ fd: Int32, _ beat: Beat) {
        guard let batch = lodestar_batch_new(Self.batchSize, Self.bufferSize) else {
            logger.error("cannot allocate UDP buffers")
            return
        }
        defer { lodestar_batch_free(batch) }
        // The snapshot is taken again only when the store's version moves (one atomic load per batch).
        var version = store.version
        var snapshot = store.current
        var engine = snapshot.engine
        var cache = AnswerCache(slots: snapshot.listener.answerCache, metrics: snapshot.metrics)
        cache.use(snapshot)
        var limits = RateLimiter.Parameters(snapshot.listener.rateLimit)
        var proxyAllow = snapshot.listener.proxyAllow
        var proxied = !proxyAllow.isEmpty
        var held = HeldBack()
        let limiter = self.limiter  // held for the loop: no retain per datagram
        var rounds: UInt64 = 0
        while !stopping.load(ordering: .relaxed) {
            rounds &+= 1
            beat.count.store(rounds, ordering: .relaxed)
            let n = lodestar_batch_recv(batch, fd)
            // Before the timeout is taken as nothing to do: an idle worker lets go of the previous
            // snapshot too (its maps are freed only once no worker holds it).
            let latest = store.version
            if latest != version {
                version = latest
                snapshot = store.current
                engine = snapshot.engine
                if snapshot.listener.answerCache != cache.requested {
                    cache = AnswerCache(slots: snapshot.listener.answerCache, metrics: snapshot.metrics)
                }
                cache.use(snapshot)
                limits = RateLimiter.Parameters(snapshot.listener.rateLimit)
                proxyAllow = snapshot.listener.proxyAllow
                proxied = !proxyAllow.isEmpty
            }
            if n <= 0 {
                if n == -EAGAIN || n == -EINTR || n == -EWOULDBLOCK { continue }
                if stopping.load(ordering: .relaxed) { break }
                logger.warning("UDP receive failed: \(String(cString: strerror(-n)))")
                usleep(1000)
                continue
            }
            let now = lodestar_monotonic_ns()
            for i in 0..<UInt32(n) {
                var m = lodestar_datagram()
                lodestar_batch_get(batch, i, &m)
                var client = ClientAddress(family: UInt8(m.family), octets: (m.high, m.low))
                var packet = UnsafeRawBufferPointer(start: m.input, count: Int(m.input_length))
                if proxied {
                    guard
                        let inner = Self.unwrapProxy(
                            packet, client: &client, allow: proxyAllow, metrics: engine.metrics)
                    else {
                        lodestar_batch_set_out_len(batch, i, 0)
                        logProxyDrop(client, allowed: proxyAllow.allows(client))
                        continue
                    }
                    packet = inner
                }
                var length = cache.respond(
                    engine: engine, to: packet,
                    into: m.output, capacity: Int(m.capacity), client: client,
                    now: now &+ UInt64(i))  // distinct per query: it seeds weighted picks
                if limits.enabled && length > 0 && !limiter.admit(client, now: now &+ UInt64(i), limits) {
                    length = holdBack(
                        m, packet: packet, length: length, client: client, snapshot: snapshot, held: &held, now: now)
                }
                lodestar_batch_set_out_len(batch, i, UInt32(length))
            }
            _ = lodestar_batch_send(batch, fd, UInt32(n))
            let tooBig = lodestar_batch_too_big_count(batch)
            if tooBig > 0 { resendSmaller(batch, fd, tooBig, engine: engine, proxyAllow: proxyAllow) }
        }
    }

    /// Per loop: which limited response slips next, and when limiting was last logged.
    struct HeldBack {
        var tick = 0
        var loggedAt: UInt64 = 0
    }

    /// A response over its prefix's rate (RRL): sent anyway to an exempt source or a client with a
    /// valid server cookie, or in log-only mode; else every `slip`th one is replaced by a small
    /// response that makes a real client retry (TC, or BADCOOKIE), and the rest are dropped.
    /// Returns what to send (0: nothing).
    @inline(never)
    func holdBack(
        _ m: lodestar_datagram, packet: UnsafeRawBufferPointer, length: Int, client: ClientAddress, snapshot: Snapshot,
        held: inout HeldBack, now: UInt64
    ) -> Int {
        let settings = snapshot.listener.rateLimit
        let metrics = snapshot.metrics
        if snapshot.listener.rateLimitExempt.allows(client) {
            metrics.record(.rateLimited(.exempt))
            return length
        }
        if settings.logOnly {
            guard
                snapshot.engine.holdBack(packet, into: m.output, capacity: Int(m.capacity), client: client, slip: false)
                    != nil
            else {
                metrics.record(.rateLimited(.exempt))
                return length
            }
            metrics.record(.rateLimited(.logOnly))
            logLimit(client, settings, held: &held, now: now)
            return length
        }
        held.tick &+= 1
        let slip = settings.slip > 0 && held.tick % settings.slip == 0
        guard
            let n = snapshot.engine.holdBack(
                packet, into: m.output, capacity: Int(m.capacity), client: client, slip: slip)
        else {
            metrics.record(.rateLimited(.exempt))
            return length
        }
        metrics.record(.rateLimited(n > 0 ? .slipped : .dropped))
        logLimit(client, settings, held: &held, now: now)
        return n
    }

    func logLimit(_ client: ClientAddress, _ s: RateLimitSettings, held: inout HeldBack, now: UInt64) {
        guard held.loggedAt == 0 || now &- held.loggedAt >= Self.limitLogSeconds * 1_000_000_000 else { return }
        held.loggedAt = now
        logger.notice(
            """
            rate limit: responses to \(RateLimiter.prefixText(client, s)) over \(s.responsesPerSecond)/s \
            (burst \(s.burst)); \(s.logOnly ? "log-only, sent anyway" : "slip \(s.slip), the rest dropped") \
            (logged at most every \(Self.limitLogSeconds) s per loop)
            """, metadata: ["prefix": "\(RateLimiter.prefixText(client, s))"])
    }

    /// Says why a datagram was dropped (at most a line every 10 s).
    @inline(never)
    func logProxyDrop(_ client: ClientAddress, allowed: Bool) {
        throttle.proxyDrop(IPAddress.format(client.bytes), allowed: allowed, tcp: false)
    }

    /// A datagram under PROXY protocol v2: from an allowed peer, the query after the header and
    /// the header's source as the client (a LOCAL header: the peer itself); nil (dropped) when an
    /// allowed peer sent no valid header, or anyone else sent one.
    @inline(never)
    static func unwrapProxy(
        _ packet: UnsafeRawBufferPointer, client: inout ClientAddress, allow: AccessList,
        metrics: QueryMetrics, count: Bool = true
    ) -> UnsafeRawBufferPointer? {
        if allow.allows(client) {
            guard case .header(let length, let source) = ProxyHeader.parse(packet) else {
                if count { metrics.record(.proxy(.noHeader)) }
                return nil
            }
            if let source { client = source }
            if count { metrics.record(.proxy(.proxied)) }
            return UnsafeRawBufferPointer(rebasing: packet[length...])
        }
        if packet.count >= ProxyHeader.signature.count && ProxyHeader.startsWithSignature(packet) {
            if count { metrics.record(.proxy(.notAllowed)) }
            return nil
        }
        return packet
    }

    /// Responses the kernel refused as larger than the interface MTU (IPv4 carries DF, RFC 9715
    /// §3.1), answered again within the classic 512 octets, with TC when the answer does not fit,
    /// so that the client retries over TCP instead of waiting for a response that never left.
    func resendSmaller(
        _ batch: OpaquePointer, _ fd: Int32, _ count: UInt32, engine: QueryEngine, proxyAllow: AccessList
    ) {
        for k in 0..<count {
            let i = lodestar_batch_too_big(batch, k)
            var m = lodestar_datagram()
            lodestar_batch_get(batch, i, &m)
            var client = ClientAddress(family: UInt8(m.family), octets: (m.high, m.low))
            var packet = UnsafeRawBufferPointer(start: m.input, count: Int(m.input_length))
            if !proxyAllow.isEmpty {
                guard
                    let inner = Self.unwrapProxy(
                        packet, client: &client, allow: proxyAllow, metrics: engine.metrics, count: false)
                else { continue }
                packet = inner
            }
            let length = engine.respond(
                to: packet,
                into: m.output, capacity: WireLimits.classicUDPSize, transport: .udp, client: client)
            lodestar_batch_set_out_len(batch, i, UInt32(length))
            let sent = length > 0 ? lodestar_batch_send_slot(batch, fd, i) : 0
            engine.metrics.record(.udpTooBig)
            if sent < 0 && Self.tooBigLogged.exchange(true, ordering: .relaxed) == false {
                logger.warning(
                    "UDP response of \(length) octets still larger than the interface MTU: \(String(cString: strerror(-sent)))"
                )
            }
        }
    }
}
