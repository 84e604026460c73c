import Cluster
import Health
import Settings
import Testing

/// The cluster's vote book alone: events in, writes and decisions out; no etcd.
@Suite("Vote book and key layout (pure core)")
struct VoteBookTests {
    static func obs(_ e: String, _ up: Bool?, _ reason: String = "r") -> EndpointObservation {
        EndpointObservation(endpoint: e, up: up, reason: reason)
    }

    static func decided(_ a: [VoteBook.Action]) -> [String: Bool?] {
        var out: [String: Bool?] = [:]
        for case .decided(let d) in a { for o in d { out[o.endpoint] = .some(o.up) } }
        return out
    }

    @Test("own verdicts are written on transitions only; a failed write is pending again")
    func writes() {
        var b = VoteBook(.init(pop: "a", policy: .quorum))
        _ = b.apply(.verdicts([Self.obs("x", true), Self.obs("y", false)]), now: 10)
        #expect(b.takeUnpublished(all: false, now: 11).map(\.endpoint) == ["x", "y"])
        _ = b.apply(.verdicts([Self.obs("x", true)]), now: 12)
        #expect(b.takeUnpublished(all: false, now: 13).isEmpty, "the same verdict is not written again")
        _ = b.apply(.verdicts([Self.obs("x", false, "refused")]), now: 14)
        let w = b.takeUnpublished(all: false, now: 15)
        #expect(w.map(\.endpoint) == ["x"] && w[0].vote.at == 15 && !w[0].vote.up)
        b.unwritten(["x"])
        #expect(b.unpublished == ["x"])
        _ = b.apply(.verdicts([Self.obs("x", nil)]), now: 16)
        #expect(b.unpublished.isEmpty, "a verdict gone is not written")
        b.republishAll()
        #expect(b.takeUnpublished(all: false, now: 17).map(\.endpoint) == ["y"])
    }

    @Test(
        "quorum over the POPs whose heartbeat is fresh; a POP whose key is gone loses its votes; frozen views; fallback to own"
    )
    func decide() {
        var b = VoteBook(.init(pop: "a", policy: .quorum, quorum: 0.5, staleAfter: 20))
        _ = b.apply(.verdicts([Self.obs("x", false, "refused")]), now: 100)
        for pop in ["b", "c"] {
            _ = b.apply(.vote(endpoint: "x", pop: pop, Vote(up: true, reason: "ok", at: 90)), now: 100)
            _ = b.apply(.heartbeat(pop: pop, at: 100), now: 100)
        }
        #expect(
            Self.decided(b.apply(.decide(fallback: false, frozen: false), now: 100)) == ["x": true],
            "one of three says down")
        #expect(b.apply(.decide(fallback: false, frozen: false), now: 101).isEmpty, "only changes are reported")
        _ = b.apply(.vote(endpoint: "x", pop: "b", Vote(up: false, reason: "timeout", at: 102)), now: 102)
        #expect(
            Self.decided(b.apply(.decide(fallback: false, frozen: false), now: 102)) == ["x": false], "two of three")
        // b's heartbeat key goes (lease expired): its vote no longer counts.
        _ = b.apply(.heartbeat(pop: "b", at: nil), now: 103)
        #expect(
            Self.decided(b.apply(.decide(fallback: false, frozen: false), now: 103)) == ["x": true],
            "one of the two POPs left says down: not more than half")
        // Etcd away past fallback-after: this POP decides alone.
        #expect(b.policy(for: "x", fallback: true) == .local)
        // Votes age out unless the view is frozen.
        _ = b.apply(.verdicts([Self.obs("x", true)]), now: 200)
        #expect(Self.decided(b.apply(.decide(fallback: false, frozen: false), now: 200)) == ["x": true])
        #expect(b.ballot("x").keys.sorted() == ["a", "c"])
    }

    @Test("keys: escaped names, and every key parsed back to what it is")
    func keys() {
        let k = ClusterKeys(prefix: "/lodestar/prod", pop: "fra/1")
        #expect(k.vote("web 1/a%b") == "/lodestar/prod/votes/web 1%2Fa%25b/fra%2F1")
        #expect(k.parse(k.vote("web 1/a%b")) == .vote(endpoint: "web 1/a%b", pop: "fra/1"))
        #expect(k.parse(k.alive) == .heartbeat(pop: "fra/1"))
        #expect(k.parse(k.override("pools", "eu/x")) == .override(kind: "pools", name: "eu/x"))
        #expect(k.parse(k.external("e")) == .external(endpoint: "e"))
        #expect(k.parse(k.anycast("ams", "svc_dns4")) == .anycast(pop: "ams", proto: "svc_dns4"))
        #expect(k.parse("/lodestar/prod/compaction") == nil)
        #expect(k.parse("/lodestar/other/votes/x/y") == nil)
        #expect(k.parse("/lodestar/prod/votes/x") == nil)
    }
}
