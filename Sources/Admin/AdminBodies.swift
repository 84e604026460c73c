import Foundation
import Health

/// A request body the admin API refuses, with the message the client gets (400).
struct BodyError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// Any key of a JSON object, to refuse the ones a body does not know.
struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// A JSON object body with a fixed set of keys: any other key is refused, naming the known ones.
protocol AdminBody: Decodable {
    static var keys: [String] { get }
    /// What the body looks like, for the message when it is not a JSON object at all.
    static var example: String { get }
}

extension AdminBody {
    static func refuseUnknownKeys(_ decoder: Decoder) throws {
        // Sorted: the same body always names the same key.
        let unknown = try decoder.container(keyedBy: AnyKey.self).allKeys.map(\.stringValue).filter {
            !keys.contains($0)
        }
        if let k = unknown.sorted().first {
            throw BodyError("unknown key \(k) (known: \(keys.joined(separator: ", ")))")
        }
    }

    /// The body decoded, or the message to answer with.
    static func decode(_ body: [UInt8]) -> Result<Self, BodyError> {
        // JSONDecoder keeps the first of two equal keys and never looks at the second.
        if let key = duplicateKey(body) { return .failure(BodyError("key \(key) appears twice")) }
        do {
            return .success(try JSONDecoder().decode(Self.self, from: Data(body)))
        } catch let e as BodyError {
            return .failure(e)
        } catch {
            return .failure(BodyError("the body must be a JSON object like \(example)"))
        }
    }
}

/// The first key that appears twice at the top level of a JSON object (keys compared as decoded,
/// so `"a"` and `"\u0061"` are one key); nil when none does, or the text is not an object.
func duplicateKey(_ body: [UInt8]) -> String? {
    var depth = 0
    var i = 0
    var expectKey = false
    var seen = Set<String>()
    while i < body.count {
        let c = body[i]
        if c == UInt8(ascii: "\"") {
            var j = i + 1
            while j < body.count, body[j] != UInt8(ascii: "\"") { j += body[j] == UInt8(ascii: "\\") ? 2 : 1 }
            if depth == 1 && expectKey, j < body.count {
                let literal = Data(body[i...j])
                let key =
                    (try? JSONDecoder().decode(String.self, from: literal)) ?? String(decoding: literal, as: UTF8.self)
                if !seen.insert(key).inserted { return key }
                expectKey = false
            }
            i = j + 1
            continue
        }
        switch c {
        case UInt8(ascii: "{"):
            depth += 1
            if depth == 1 { expectKey = true }
        case UInt8(ascii: "["): depth += 1
        case UInt8(ascii: "}"), UInt8(ascii: "]"): depth -= 1
        case UInt8(ascii: ","): if depth == 1 { expectKey = true }
        default: break
        }
        i += 1
    }
    return nil
}

/// `POST /v1/{regions|pools|endpoints}/NAME`: `state` (`auto` clears it) and `weight` (null clears it).
struct OverrideBody: AdminBody {
    static let keys = ["state", "weight"]
    static let example = #"{"state": "down"} or {"weight": 10}"#
    /// nil: unchanged; `.some(nil)`: back to automatic.
    var state: AdminOverride.State?? = nil
    var weight: Double?? = nil

    init(from decoder: Decoder) throws {
        try Self.refuseUnknownKeys(decoder)
        let c = try decoder.container(keyedBy: AnyKey.self)
        let stateKey = AnyKey(stringValue: "state")
        let weightKey = AnyKey(stringValue: "weight")
        if c.contains(stateKey) {
            let s = try? c.decode(String.self, forKey: stateKey)
            if s == "auto" {
                state = .some(nil)
            } else if let v = s.flatMap(AdminOverride.State.init(rawValue:)) {
                state = .some(v)
            } else {
                throw BodyError("state must be up, down, drain or auto")
            }
        }
        if c.contains(weightKey) {
            if try c.decodeNil(forKey: weightKey) {
                weight = .some(nil)
            } else if let w = try? c.decode(Double.self, forKey: weightKey), (0...1_000_000).contains(w) {
                weight = .some(w)
            } else {
                throw BodyError("weight must be a number from 0 to 1000000, or null")
            }
        }
    }
}

/// `POST /v1/health/NAME`: external health input, `state` up, down or auto, a `reason`, a `ttl`.
struct ExternalBody: AdminBody {
    static let keys = ["state", "reason", "ttl"]
    static let example = #"{"state": "down", "reason": "…", "ttl": 60}"#
    /// nil: automatic again.
    var up: Bool?
    var reason: String
    var ttl: Double? = nil

    init(from decoder: Decoder) throws {
        try Self.refuseUnknownKeys(decoder)
        let c = try decoder.container(keyedBy: AnyKey.self)
        switch try? c.decode(String.self, forKey: AnyKey(stringValue: "state")) {
        case "up"?: up = true
        case "down"?: up = false
        case "auto"?: up = nil
        default: throw BodyError("state must be up, down or auto")
        }
        let reasonKey = AnyKey(stringValue: "reason")
        let ttlKey = AnyKey(stringValue: "ttl")
        if c.contains(reasonKey) {
            guard let r = try? c.decode(String.self, forKey: reasonKey) else {
                throw BodyError("reason must be a string")
            }
            reason = r
        } else {
            reason = up == true ? "up" : "down"
        }
        if c.contains(ttlKey) {
            guard let d = try? c.decode(Double.self, forKey: ttlKey), d >= 1, d <= 86400 * 7 else {
                throw BodyError("ttl must be a number of seconds from 1 to 604800")
            }
            ttl = d
        }
    }
}

/// `POST /v1/anycast/PROTOCOL`: `state` withdraw or auto, and on a cluster the `pop` it is for.
struct AnycastBody: AdminBody {
    static let keys = ["state", "pop"]
    static let example = #"{"state": "withdraw"} or {"state": "auto"}, and optionally "pop""#
    /// nil: automatic again.
    var withdraw: Bool?
    var pop: String?

    init(from decoder: Decoder) throws {
        try Self.refuseUnknownKeys(decoder)
        let c = try decoder.container(keyedBy: AnyKey.self)
        switch try? c.decode(String.self, forKey: AnyKey(stringValue: "state")) {
        case "withdraw"?: withdraw = true
        case "auto"?: withdraw = nil
        default:
            throw BodyError(
                "the body must be {\"state\": \"withdraw\"} or {\"state\": \"auto\"}, and optionally \"pop\"")
        }
        let popKey = AnyKey(stringValue: "pop")
        if c.contains(popKey) {
            guard let p = try? c.decode(String.self, forKey: popKey) else { throw BodyError("pop must be a string") }
            pop = p
        }
    }
}
