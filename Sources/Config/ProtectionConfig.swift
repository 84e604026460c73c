import Protection

extension Config {
    /// The `rate-limit:` and `cookies:` sections.
    ///
    /// ```yaml
    /// rate-limit:
    ///   responses-per-second: 100   # per source prefix; 0 = off
    ///   burst: 200                  # responses at once above the rate
    ///   slip: 2                     # every 2nd limited response goes out truncated; 0 = drop all
    ///   ipv4-prefix: 24
    ///   ipv6-prefix: 56
    ///   exempt: ["192.0.2.0/24"]    # never limited
    ///   log-only: false             # count and log, send anyway
    /// cookies:
    ///   enabled: true
    ///   secret: 000102030405060708090a0b0c0d0e0f   # 32 hex digits shared by an anycast group
    /// proxy-protocol:
    ///   allow: ["127.0.0.1/32"]     # peers (dnsdist, an L4 balancer) whose PROXY v2 header is trusted
    /// ```
    static let protectionKeys = ["rate-limit", "cookies", "proxy-protocol"]

    mutating func loadProtection(_ top: Section) throws {
        if let rl = try top.section("rate-limit") {
            try rl.allow(["responses-per-second", "burst", "slip", "ipv4-prefix", "ipv6-prefix", "exempt", "log-only"])
            if let v = try rl.integer("responses-per-second", range: 0...1_000_000) { rateLimit.responsesPerSecond = v }
            if let v = try rl.integer("burst", range: 1...10_000_000) {
                rateLimit.burst = v
            } else if rateLimit.responsesPerSecond > 0 {
                rateLimit.burst = 2 * rateLimit.responsesPerSecond
            }
            if let v = try rl.integer("slip", range: 0...100) { rateLimit.slip = v }
            if let v = try rl.integer("ipv4-prefix", range: 8...32) { rateLimit.ipv4PrefixLength = v }
            if let v = try rl.integer("ipv6-prefix", range: 16...64) { rateLimit.ipv6PrefixLength = v }
            if let v = try rl.flag("log-only") { rateLimit.logOnly = v }
            rateLimitExempt = try rl.prefixes("exempt")
        }
        if let p = try top.section("proxy-protocol") {
            try p.allow(["allow"])
            proxyAllow = try p.prefixes("allow")
        }
        if let c = try top.section("cookies") {
            try c.allow(["enabled", "secret"])
            if let v = try c.flag("enabled") { cookies = v }
            if let (hex, line) = try c.string("secret") {
                guard let secret = CookieSecret(hex: hex) else {
                    throw ConfigError(
                        file: c.file, line: line, message: "cookies secret must be 32 hexadecimal digits (16 octets)")
                }
                cookieSecret = secret
            }
        }
    }
}
