import Foundation
import Logging
import Settings

/// BIRD I/O, on the controller thread only (never under `lock`): the connection, commands,
/// applying decisions, re-reading its state.
extension AnycastController {
    func ensureConnected(now: Double) {
        guard !bird.isConnected else { return }
        guard now >= nextConnect else { return }
        do {
            try bird.connect()
            if !connected || birdError != nil {
                logger.notice("anycast: connected to BIRD at \(settings.socket) (\(bird.greeting))")
            }
            connected = true
            birdError = nil
            backoff = 1
            // After (re)connecting, re-assert everything: BIRD may have restarted.
            applied = [:]
            nextReassert = 0
        } catch {
            let text = "\(error)"
            if text != birdError {
                logger.error(
                    "anycast: cannot reach BIRD: \(text); still serving DNS, retrying",
                    metadata: ["peer": "\(settings.socket)", "reason": "\(text)"])
            }
            birdError = text
            connected = false
            nextConnect = now + backoff
            backoff = min(backoff * 2, 10)
        }
    }

    /// One command, timed and counted; nil when the transport failed.
    func command(_ text: String, expected: Set<Int> = []) -> BirdReply? {
        guard bird.isConnected else { return nil }
        let t0 = Self.now()
        do {
            let r = try bird.send(text)
            commands += 1
            lastCommand = text
            lastCommandSeconds = Self.now() - t0
            lastCommandCode = r.code
            if !r.ok && !expected.contains(r.code) {
                commandErrors += 1
                logger.error("anycast: BIRD answered \(r.code) to \"\(text)\": \(r.text)")
            }
            return r
        } catch {
            commandErrors += 1
            connected = false
            birdError = "\(error)"
            logger.error("anycast: \(error); reconnecting")
            nextConnect = Self.now() + backoff
            return nil
        }
    }

    /// Brings BIRD to the desired states: new decisions at once, all of them when a re-assertion is due.
    func apply(now: Double) {
        guard bird.isConnected else { return }
        let reassert = now >= nextReassert
        if reassert { nextReassert = now + settings.reassert }
        var needConfigure = false
        for (i, p) in settings.prefixes.enumerated() {
            let want = routes[i].desired
            let drainWanted = want == .drain
            if drainWanted != drainLoaded.contains(p.proto) { needConfigure = true }
        }
        if needConfigure {
            // The include file already says what to drain; configure loads it (never `configure soft`,
            // which leaves exported routes alone).
            if let r = command("configure"), r.ok {
                drainLoaded = Set(
                    settings.prefixes.indices.filter { routes[$0].desired == .drain }.map {
                        settings.prefixes[$0].proto
                    })
            }
        }
        for (i, p) in settings.prefixes.enumerated() {
            let want = routes[i].desired
            if reassert || applied[p.proto] != want {
                if reassert { refresh(p) }
                let up = birdState[p.proto].map { $0 == "up" || $0 == "start" }
                var text: String? = nil
                switch want {
                case .announce, .drain:
                    if applied[p.proto] != want || up == false { text = "enable \(p.proto)" }
                case .withdraw:
                    if applied[p.proto] != want || up == true {
                        text = "disable \(p.proto) \"\(BirdNames.message("lodestar: \(routes[i].reason)"))\""
                    }
                }
                if let text, let r = command(text) {
                    prefixCommand[p.proto] = (lastCommandSeconds ?? 0, r.code)
                    if r.ok { applied[p.proto] = want }
                }
                if reassert || applied[p.proto] == want { refresh(p) }
            }
        }
    }

    /// BIRD's view of one prefix: the static protocol's state, and whether it is exported.
    func refresh(_ p: AnycastSettings.Prefix) {
        if let r = command("show protocols \(p.proto)"), r.ok {
            // 1002 row: name proto table state since info
            if let row = r.lines.first(where: { $0.code == 1002 }) {
                let f = row.text.split(separator: " ", omittingEmptySubsequences: true)
                if f.count >= 4, f[0] == p.proto { birdState[p.proto] = String(f[3]) }
            }
        }
        if let e = p.exportProtocol, let r = command("show route export \(e) \(p.prefix)", expected: [8001]) {
            exported[p.proto] = r.ok && r.lines.contains { $0.text.hasPrefix(p.prefix + " ") }
        }
    }

    /// Paths to the prefix in BIRD's table from protocols other than this node's anycast statics.
    func countOtherPaths(_ p: AnycastSettings.Prefix) -> Int? {
        guard let r = command("show route \(p.prefix)", expected: [8001]) else { return nil }
        if r.code == 8001 { return 0 }
        guard r.ok else { return nil }
        let ours = Set(settings.prefixes.map(\.proto))
        var n = 0
        for line in r.lines where line.code == 1007 {
            // " 198.51.100.53/32  unreachable [from_c 2026-… from 127.0.0.4] * (100) [AS65003i]"
            guard let open = line.text.firstIndex(of: "[") else { continue }
            let proto = line.text[line.text.index(after: open)...].split(separator: " ").first.map(String.init) ?? ""
            if !proto.isEmpty && !ours.contains(proto) && !line.text.hasPrefix("Table ") { n += 1 }
        }
        return n
    }
}
