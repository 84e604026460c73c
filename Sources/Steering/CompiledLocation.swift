/// One set of location tries of a table, and what it was built for.
struct CompiledLocation: Sendable {
    var signature: LocationSignature
    var v4: LocationTrie
    var v6: LocationTrie
    var classes: [LocationClass]
}
