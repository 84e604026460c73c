import Cluster
import Testing

/// The link to etcd alone: away, fallback, and the hold of the last shared view after a
/// reconnection; the time passed in.
@Suite("Cluster link (pure core)")
struct ClusterLinkTests {
    @Test("never reached: own verdicts at once; the first failure is news, the next are not")
    func neverReached() {
        var l = ClusterLink(staleAfter: 20, fallbackAfter: 30, now: 0)
        let first = l.lost("connection refused", now: 1)
        let second = l.lost("connection refused", now: 2)
        #expect(first && !second)
        let f = l.fallback(now: 2)
        #expect(f.fallback && f.changed && f.away == 2)
        #expect(!l.holding(fallback: true, now: 2))
    }

    @Test("away: the last shared view holds until fallback-after, then own verdicts; back: the shared view")
    func away() {
        var l = ClusterLink(staleAfter: 20, fallbackAfter: 30, now: 0)
        let reached = l.contact(now: 1, others: [])
        #expect(reached.wasAway)
        #expect(l.fallback(now: 1).fallback == false)
        let news = l.lost("timeout", now: 10)
        #expect(news, "losing a connected etcd is news")
        let early = l.fallback(now: 20).fallback
        #expect(!early && l.holding(fallback: early, now: 20), "10 s away: the last view holds")
        let f = l.fallback(now: 40.5)
        #expect(f.fallback && f.changed && f.away == 30.5)
        #expect(!l.holding(fallback: true, now: 40.5))
        let back = l.contact(now: 50, others: [])
        #expect(back.wasAway && back.away == 40)
        let g = l.fallback(now: 50)
        #expect(!g.fallback && g.changed && g.away == 0)
        #expect(!l.holding(fallback: false, now: 50), "no other POP known: no hold")
    }

    @Test("after a reconnection the view holds until every other POP's heartbeat written after it has arrived")
    func hold() {
        var l = ClusterLink(staleAfter: 20, fallbackAfter: 30, now: 0)
        _ = l.contact(now: 1, others: [])
        _ = l.lost("timeout", now: 5)
        _ = l.contact(now: 8, others: ["b", "c"])
        #expect(l.holding(fallback: false, now: 8) && l.holdUntil == 38)
        // A heartbeat delivered before the quorum read's revision is known does not count…
        l.heard(pop: "b", gone: false, live: true, revision: 500)
        #expect(l.awaitedBeats == ["b", "c"])
        l.regained(revision: 600)
        // …nor one committed before etcd came back, nor one from the initial read.
        l.heard(pop: "b", gone: false, live: true, revision: 590)
        l.heard(pop: "b", gone: false, live: false, revision: 700)
        #expect(l.awaitedBeats == ["b", "c"])
        l.heard(pop: "b", gone: false, live: true, revision: 601)
        #expect(l.awaitedBeats == ["c"] && l.holding(fallback: false, now: 9))
        // A POP whose key went (its lease expired) is not waited for.
        l.heard(pop: "c", gone: true, live: true, revision: 0)
        #expect(l.awaitedBeats.isEmpty && !l.holding(fallback: false, now: 9))
    }

    @Test("the hold ends at max(stale-after, fallback-after) at the latest; clocks are judged only once settled")
    func holdBound() {
        var l = ClusterLink(staleAfter: 20, fallbackAfter: 30, now: 0)
        _ = l.contact(now: 1, others: [])
        _ = l.lost("timeout", now: 5)
        _ = l.contact(now: 8, others: ["b"])
        #expect(l.holding(fallback: false, now: 37.9))
        #expect(!l.holding(fallback: false, now: 38))
        #expect(!l.settled(now: 27) && l.settled(now: 28.5))
    }
}
