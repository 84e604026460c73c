import Foundation
import OriginSupport
import Testing

@Suite("Listen addresses")
struct ListenTests {
    @Test("An IPv6 loopback listener answers over UDP and TCP", .timeLimit(.minutes(1)))
    func ipv6() throws {
        let port = FreePort.pick()
        let server = try LodestarProcess(extra: ["--listen", "[::1]:\(port)"])
        defer { server.stop() }
        for transport in ["+notcp", "+tcp"] {
            let r = try Command.run(
                "/usr/bin/dig", ["@::1", "-p", "\(port)", transport, "+norec", "www.example.com", "AAAA"])
            let d = DigResult(r.output)
            #expect(
                d.status == "NOERROR" && d.answer == ["www.example.com. 3600 IN AAAA 2001:db8::10"],
                "\(transport)\n\(d)")
        }
    }

    @Test("An address that cannot be bound is an error naming it", .timeLimit(.minutes(1)))
    func unbindable() throws {
        // 192.0.2.1 (TEST-NET-1) is on no interface here: binding it fails.
        let r = try Command.run(
            Paths.binary, ["serve", "--zones", Paths.packageRoot + "/zones", "--listen", "192.0.2.1:5300"],
            timeout: 10)
        #expect(r.status != 0)
        #expect(r.error.contains("192.0.2.1:5300"), "\(r.error)")
    }
}
