import Foundation
import Testing

/// The fuzzing harnesses' committed corpora (Fuzz/Corpus), replayed through the harnesses built
/// without libFuzzer: every input that once found something, or seeds a surface, keeps passing.
/// (scripts/test.sh also fuzzes each harness briefly with libFuzzer.)
@Suite("Fuzzing corpora, replayed")
struct FuzzCorpusTests {
    @Test(
        "every committed input passes its harness",
        arguments: ["query", "name", "zone", "config", "admin", "bird", "etcd", "mmdb", "include"])
    func replay(target: String) throws {
        let binary = (Paths.binary as NSString).deletingLastPathComponent + "/lodestar-fuzz"
        let corpus = Paths.packageRoot + "/Fuzz/Corpus/" + target
        let count = try FileManager.default.contentsOfDirectory(atPath: corpus).count
        #expect(count > 0, "no seeds for \(target)")
        let r = try Command.run("/usr/bin/env", ["LODESTAR_FUZZ_TARGET=\(target)", binary, corpus], timeout: 120)
        #expect(r.status == 0, "\(r.output.suffix(2000))\(r.error.suffix(3000))")
        #expect(r.output.contains("\(target): \(count) inputs replayed, no failure"), "\(r.output)")
    }
}
