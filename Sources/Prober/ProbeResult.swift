import Foundation
package import Health

/// The result of one probe: pass or fail with a precise reason, and what else was learnt.
package struct ProbeResult: Sendable, Equatable {
    package var outcome: CheckOutcome
    /// A short class of the failure for metrics (`timeout`, `refused`, `http-status`, …); `ok` on success.
    package var kind: String
    /// HTTPS: days until the server's certificate expires (negative once expired).
    package var certDaysLeft: Double? = nil
    /// When the origin's certificate expires (Unix time), if a TLS handshake showed one.
    package var certExpiry: Double? = nil

    package init(outcome: CheckOutcome, kind: String, certDaysLeft: Double? = nil, certExpiry: Double? = nil) {
        self.outcome = outcome
        self.kind = kind
        self.certDaysLeft = certDaysLeft
        self.certExpiry = certExpiry
    }

    static func ok(_ rtt: Double, certDaysLeft: Double? = nil) -> ProbeResult {
        ProbeResult(outcome: .success(rtt: rtt), kind: "ok", certDaysLeft: certDaysLeft)
    }

    static func fail(_ kind: String, _ reason: String, certDaysLeft: Double? = nil) -> ProbeResult {
        ProbeResult(outcome: .failure(reason: reason), kind: kind, certDaysLeft: certDaysLeft)
    }

    /// Not run: a local error (kind `local`), which says nothing about the target.
    static func local(_ reason: String) -> ProbeResult {
        ProbeResult(outcome: .local(reason: reason), kind: "local")
    }
}

/// `2 s`, `0.5 s`: seconds without trailing zeros, for messages.
package func seconds(_ s: Double) -> String {
    s == s.rounded() ? "\(Int(s)) s" : "\(s) s"
}
