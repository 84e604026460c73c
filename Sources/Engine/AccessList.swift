public import DNSWire
public import Steering

/// Who may do something: a list of prefixes (transfers, rate-limit exemptions, PROXY peers).
public typealias AccessList = [Prefix]

extension Array where Element == Prefix {
    /// Whether any prefix of this access list holds `client` (an IPv4-mapped client counts as IPv4:
    /// `ClientAddress` stores it so).
    public func allows(_ client: ClientAddress) -> Bool {
        contains { $0.contains(family: Int(client.family), high: client.octets.0, low: client.octets.1) }
    }
}
