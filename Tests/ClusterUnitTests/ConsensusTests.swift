import Cluster
import Settings
import Testing

@Suite struct ConsensusTests {
    static func votes(_ v: [(String, Bool, Double)]) -> [String: Vote] {
        Dictionary(uniqueKeysWithValues: v.map { ($0.0, Vote(up: $0.1, reason: $0.1 ? "ok" : "timeout", at: $0.2)) })
    }

    static func decide(
        _ v: [String: Vote], _ policy: HealthPolicy, quorum: Double = 0.5, now: Double = 100, frozen: Bool = false
    ) -> Bool? {
        Consensus.decide(votes: v, own: "a", policy: policy, quorum: quorum, staleAfter: 10, now: now, frozen: frozen)?
            .up
    }

    @Test("quorum: down only when more than the fraction of fresh voters say down")
    func quorum() {
        let oneOfThree = Self.votes([("a", false, 100), ("b", true, 100), ("c", true, 100)])
        let twoOfThree = Self.votes([("a", false, 100), ("b", false, 100), ("c", true, 100)])
        let half = Self.votes([("a", false, 100), ("b", true, 100)])
        #expect(Self.decide(oneOfThree, .quorum) == true)
        #expect(Self.decide(twoOfThree, .quorum) == false)
        #expect(Self.decide(half, .quorum) == true, "exactly half is not more than half")
        #expect(Self.decide(half, .quorum, quorum: 0.4) == false)
        #expect(Self.decide(oneOfThree, .quorum, quorum: 0) == false, "quorum 0: any down vote")
    }

    @Test("stale votes do not count, unless the view is frozen; this POP's own always counts")
    func staleness() {
        let v = Self.votes([("a", true, 50), ("b", false, 80), ("c", false, 95)])
        #expect(
            Self.decide(v, .quorum) == true,
            "b is stale: a (own, however old) up and c down, 1 of 2 is not more than half")
        let w = Self.votes([("a", true, 100), ("b", false, 80), ("c", false, 80)])
        #expect(Self.decide(w, .quorum) == true, "b and c are stale: only a counts")
        #expect(Self.decide(w, .quorum, frozen: true) == false, "frozen: the last view counts whole")
        #expect(Self.decide([:], .quorum) == nil)
    }

    @Test("local, any-up, all-up")
    func otherPolicies() {
        let v = Self.votes([("a", false, 100), ("b", true, 100), ("c", true, 100)])
        #expect(Self.decide(v, .local) == false)
        #expect(Self.decide(v, .anyUp) == true)
        #expect(Self.decide(v, .allUp) == false)
        #expect(Self.decide(Self.votes([("b", true, 100)]), .local) == nil, "no own verdict: not checked")
        let r = Consensus.decide(
            votes: v, own: "a", policy: .quorum, quorum: 0.5, staleAfter: 10, now: 100, frozen: false)
        #expect(r?.reason == "up by quorum: 2 of 3 POPs say up (a down: timeout; b up; c up)")
    }

    @Test("etcd endpoints: http:// or https://ADDRESS:PORT only")
    func endpoints() {
        #expect(
            EtcdClient.Endpoint.parse("http://127.0.0.1:2379") == EtcdClient.Endpoint(host: "127.0.0.1", port: 2379))
        #expect(EtcdClient.Endpoint.parse("http://[::1]:2379/")?.host == "::1")
        #expect(EtcdClient.Endpoint.parse("http://localhost:2379")?.host == "127.0.0.1")
        #expect(EtcdClient.Endpoint.parse("https://127.0.0.1:2379")?.tls == true)
        for bad in [
            "ftp://127.0.0.1:2379", "http://etcd.example:2379", "http://127.0.0.1", "http://127.0.0.1:0",
            "127.0.0.1:2379", "http://[::1:2379"
        ] {
            #expect(EtcdClient.Endpoint.parse(bad) == nil, "\(bad)")
        }
    }
}
