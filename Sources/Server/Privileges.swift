import CLodestarSys
import Config
import Foundation
import Glibc
import Logging
import Settings

/// Least privilege: started as root with `server.user`, the sockets are opened first and then the
/// process becomes that user and group for good, keeping no capability; started unprivileged with
/// CAP_NET_BIND_SERVICE (systemd's `AmbientCapabilities=`), the capability is given up once the
/// sockets are open. Either way every parser (zones, geo databases, origin certificates, HTTP)
/// runs without privilege.
enum Privileges {
    struct Target {
        var user: String
        var uid: uid_t
        var gid: gid_t
    }

    /// The user and group `config` names, looked up now (a typo fails before anything is bound).
    static func target(_ config: Config) throws -> Target? {
        guard let user = config.user else {
            if config.group != nil { throw ServerError("server.group needs server.user") }
            return nil
        }
        guard let pw = getpwnam(user) else { throw ServerError("server.user \"\(user)\": no such user") }
        var gid = pw.pointee.pw_gid
        if let group = config.group {
            guard let gr = getgrnam(group) else { throw ServerError("server.group \"\(group)\": no such group") }
            gid = gr.pointee.gr_gid
        }
        return Target(user: user, uid: pw.pointee.pw_uid, gid: gid)
    }

    /// Becomes `target` (or, with none, gives up any capability), then checks that what a reload
    /// and the state file need is still reachable. Throws with what to fix.
    static func drop(to target: Target?, config: Config, logger: Logger) throws {
        if let target {
            if getuid() == target.uid && geteuid() == target.uid {
                _ = lodestar_clear_capabilities()
            } else {
                guard geteuid() == 0 else {
                    throw ServerError(
                        "server.user \(target.user) needs lodestar started as root (it runs as uid \(geteuid()))")
                }
                let r = lodestar_drop_privileges(target.user, UInt32(target.uid), UInt32(target.gid))
                guard r == 0 else {
                    throw ServerError(
                        "cannot become user \(target.user) (uid \(target.uid), gid \(target.gid)): \(String(cString: strerror(-r)))"
                    )
                }
            }
            logger.info(
                "running as user \(target.user) (uid \(target.uid), gid \(target.gid)), no capabilities",
                metadata: ["user": "\(target.user)"])
        } else if geteuid() != 0 {
            if lodestar_effective_capabilities() != 0 { _ = lodestar_clear_capabilities() }
        } else {
            logger.warning(
                "running as root: set server.user (or --user) so that parsers of network input run unprivileged")
        }
        try checkAccess(config)
    }

    /// What the process needs after the drop: the config, zones and geo databases readable (for
    /// reloads) and the state file's folder writable.
    static func checkAccess(_ config: Config) throws {
        let who = "uid \(geteuid())"
        func need(_ path: String, _ mode: Int32, _ what: String, _ fix: String) throws {
            guard access(path, mode) == 0 else {
                throw ServerError("\(path): \(what) is not \(fix) by \(who) (\(String(cString: strerror(errno))))")
            }
        }
        if let f = config.file { try need(f, R_OK, "the config file", "readable") }
        try need(config.zonesDirectory, R_OK | X_OK, "the zones folder", "readable")
        for db in [config.geoDatabase, config.asnDatabase].compactMap({ $0 }) {
            try need(db, R_OK, "the geo database", "readable")
        }
        if let state = config.stateFile {
            let dir = (state as NSString).deletingLastPathComponent
            try need(dir.isEmpty ? "." : dir, W_OK | X_OK, "the state file's folder", "writable")
        }
        if let include = config.anycast?.includeFile {
            // lodestar rewrites BIRD's include file (temporary file and rename) as it decides.
            let dir = (include as NSString).deletingLastPathComponent
            try need(dir.isEmpty ? "." : dir, W_OK | X_OK, "the anycast include file's folder", "writable")
        }
    }
}
