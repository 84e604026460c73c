import CLodestarSys
import Dispatch
import Foundation
import Logging
import NIOCore
import NIOPosix
import Health

/// Once a second: external input (API and file), live RTT per region, the lag window.
extension Prober {
    func tick() {
        let now = Self.now()
        var changes: [EndpointObservation] = []
        var rtt: [String: Double]? = nil
        lock.lock()
        if stopped { lock.unlock(); return }
        lagWindow.removeAll { now - $0.at > 60 }
        readExternalFile()
        for (name, x) in external where x.expires <= now {
            external[name] = nil
            logger.warning("external health of \(name) expired (\(x.fromFile ? "the file is older than \(seconds(settings.externalStaleAfter))" : "its ttl passed")); ignored")
            if let e = endpoints.firstIndex(where: { $0.name == name }), let c = recombine(e) { changes.append(c) }
        }
        let extra = regionExtra()
        if extra.keys != lastRTTSent.keys || extra.contains(where: { abs($0.value - (lastRTTSent[$0.key] ?? 0)) >= 1 }) {
            lastRTTSent = extra
            rtt = extra
        }
        queue(changes)
        lock.unlock()
        if let rtt { onRTT(rtt) }
    }

    /// Per region: mean over its passing checks of (EWMA − recent best), in milliseconds.
    func regionExtra() -> [String: Double] { regionRTT().compactMapValues(\.extra) }

    /// Per region, in milliseconds: the mean RTT average of its checks, and the mean excess of the
    /// passing ones over their recent best (nil while none passes).
    func regionRTT() -> [String: (rtt: Double, extra: Double?)] {
        var rtt: [String: (sum: Double, n: Double)] = [:], extra: [String: (sum: Double, n: Double)] = [:]
        for t in tasks {
            guard let avg = t.rtt.value else { continue }
            let r = endpoints[t.endpoint].region
            rtt[r, default: (0, 0)].sum += avg * 1000
            rtt[r, default: (0, 0)].n += 1
            guard case .success? = t.last?.outcome, let floor = t.floor else { continue }
            extra[r, default: (0, 0)].sum += max(0, avg - floor) * 1000
            extra[r, default: (0, 0)].n += 1
        }
        return rtt.reduce(into: [:]) { out, r in
            out[r.key] = (r.value.sum / r.value.n, extra[r.key].map { ($0.sum / $0.n).rounded() })
        }
    }

    // MARK: - External input

    /// Health of an endpoint checked elsewhere, for `ttl` seconds (default the stale timeout).
    package func setExternal(endpoint: String, up: Bool?, reason: String, ttl: Double?) -> Bool {
        lock.lock()
        guard let e = endpoints.firstIndex(where: { $0.name == endpoint }) else { lock.unlock(); return false }
        if let up {
            external[endpoint] = (up, reason, Self.now() + (ttl ?? settings.externalStaleAfter), false)
        } else {
            external[endpoint] = nil
        }
        let c = recombine(e)
        lock.unlock()
        // At once, so the caller (the admin API) sees its change in force when this returns.
        if let c { onChange([c]) }
        return true
    }

    /// Re-reads the external file when it changed; its entries expire `externalStaleAfter` after
    /// its modification time. A line that cannot be parsed keeps the previous content.
    func readExternalFile() {
        guard let path = settings.externalFile else { return }
        guard let attrs = try? FileManager.default.attributesOfItem(atPath: path),
              let mtime = (attrs[.modificationDate] as? Date)?.timeIntervalSince1970 else {
            if externalMtime != -1 {
                logger.error("\(path): cannot read the external health file")
                externalMtime = -1
            }
            return
        }
        guard mtime != externalMtime else { return }
        externalMtime = mtime
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return }
        var entries: [String: (Bool, String)] = [:]
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard !words.isEmpty else { continue }
            guard words.count >= 2, ["up", "down"].contains(words[1].lowercased()) else {
                logger.error("\(path):\(n + 1): expected \"ENDPOINT up|down [reason]\"; keeping the previous content")
                return
            }
            let name = String(words[0])
            guard endpoints.contains(where: { $0.name == name }) else {
                logger.warning("\(path):\(n + 1): no endpoint named \(name)")
                continue
            }
            let reason = words.count > 2 ? words[2...].joined(separator: " ") : (words[1].lowercased() == "up" ? "up" : "down")
            entries[name] = (words[1].lowercased() == "up", reason)
        }
        let age = Date().timeIntervalSince1970 - mtime
        let expires = Self.now() + settings.externalStaleAfter - age
        var changed: [Int] = []
        for (name, x) in external where x.fromFile && entries[name] == nil {
            external[name] = nil
            if let e = endpoints.firstIndex(where: { $0.name == name }) { changed.append(e) }
        }
        if expires > Self.now() {
            for (name, v) in entries {
                external[name] = (v.0, v.1, expires, true)
                if let e = endpoints.firstIndex(where: { $0.name == name }) { changed.append(e) }
            }
        } else if !entries.isEmpty {
            logger.warning("\(path): older than \(seconds(settings.externalStaleAfter)); ignored")
        }
        queue(changed.compactMap { recombine($0) })
    }
}
