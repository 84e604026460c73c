import DNSWire
import Foundation
import Health
import NIOCore
import NIOPosix

/// A DNS check: one query over UDP, its reply read by `DNSProbeHandler`.
extension ProbeRunner {
    func startDNS(_ a: Attempt, _ address: SocketAddress) {
        let spec = a.spec
        guard let qname = Name.fromText(spec.query.hasSuffix(".") ? spec.query : spec.query + ".") else {
            a.finish(.fail("config", "\"\(spec.query)\" is not a domain name"))
            return
        }
        let id = UInt16.random(in: 0...UInt16.max)
        let query: [UInt8] =
            [UInt8(id >> 8), UInt8(id & 0xFF), 0, 0, 0, 1, 0, 0, 0, 0, 0, 0] + qname
            + [UInt8(spec.qtype >> 8), UInt8(spec.qtype & 0xFF), 0, 1]
        let bind: SocketAddress
        do {
            bind = try SocketAddress(
                ipAddress: a.spec.source ?? (address.protocol == .inet6 ? "::" : "0.0.0.0"), port: 0)
        } catch {
            a.finish(.fail("error", "\(error)"))
            return
        }
        a.phase = "waiting for the DNS reply"
        DatagramBootstrap(group: loop)
            .channelInitializer { channel in
                do {
                    try channel.pipeline.syncOperations.addHandler(DNSProbeHandler(attempt: a, id: id, qname: qname))
                    return channel.eventLoop.makeSucceededVoidFuture()
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
            .bind(to: bind)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    a.channel = channel
                    if a.done {
                        channel.close(promise: nil)
                        return
                    }
                    // Connected, so ICMP port unreachable comes back as "connection refused".
                    channel.connect(to: address).flatMap {
                        channel.writeAndFlush(
                            AddressedEnvelope(
                                remoteAddress: address,
                                data: channel.allocator.buffer(bytes: query)))
                    }.whenFailure { error in a.finish(Self.classify(error, timeout: spec.timeout, phase: "sending")) }
                case .failure(let error):
                    a.finish(.fail("error", "cannot open a UDP socket: \(error)"))
                }
            }
    }
}
