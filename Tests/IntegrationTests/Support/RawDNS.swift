import Foundation

/// Hand-built DNS packets and plain sockets, for what dig cannot send or measure.
enum RawDNS {
    static func name(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        for label in text.split(separator: ".") {
            out.append(UInt8(label.utf8.count))
            out += Array(label.utf8)
        }
        return out + [0]
    }

    /// A query; `opt` is appended as the additional record when given.
    static func query(id: UInt16, name qname: String, type: UInt16, flags: UInt16 = 0, opt: [UInt8]? = nil) -> [UInt8] {
        var p: [UInt8] = [
            UInt8(id >> 8), UInt8(id & 0xFF), UInt8(flags >> 8), UInt8(flags & 0xFF), 0, 1, 0, 0, 0, 0, 0,
            opt == nil ? 0 : 1
        ]
        p += name(qname) + [UInt8(type >> 8), UInt8(type & 0xFF), 0, 1]
        if let opt { p += opt }
        return p
    }

    /// An OPT record with the given options (code, data).
    static func opt(payload: UInt16 = 1232, options: [(UInt16, [UInt8])] = []) -> [UInt8] {
        var data: [UInt8] = []
        for (code, d) in options {
            data += [UInt8(code >> 8), UInt8(code & 0xFF), UInt8(d.count >> 8), UInt8(d.count & 0xFF)] + d
        }
        return [
            0, 0, 41, UInt8(payload >> 8), UInt8(payload & 0xFF), 0, 0, 0, 0, UInt8(data.count >> 8),
            UInt8(data.count & 0xFF)
        ] + data
    }

    static func sockaddr4(_ port: Int) -> sockaddr_in {
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = in_port_t(UInt16(port).bigEndian)
        a.sin_addr.s_addr = inet_addr("127.0.0.1")
        return a
    }

    static func setTimeout(_ fd: Int32, _ seconds: Double) {
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    /// A connected UDP socket to the server.
    static func udpSocket(port: Int, timeout: Double) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var a = sockaddr4(port)
        _ = withUnsafePointer(to: &a) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        setTimeout(fd, timeout)
        return fd
    }

    /// Sends one datagram and waits for one reply; nil on timeout.
    static func udp(_ packet: [UInt8], port: Int, timeout: Double = 1) -> [UInt8]? {
        let fd = udpSocket(port: port, timeout: timeout)
        defer { close(fd) }
        _ = packet.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var buf = [UInt8](repeating: 0, count: 65535)
        let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return n > 0 ? Array(buf[0..<n]) : nil
    }

    /// A TCP connection to the server, or -1.
    static func tcpConnect(port: Int, timeout: Double = 2) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var a = sockaddr4(port)
        let ok = withUnsafePointer(to: &a) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard ok == 0 else {
            close(fd)
            return -1
        }
        setTimeout(fd, timeout)
        return fd
    }

    static func framed(_ packet: [UInt8]) -> [UInt8] { [UInt8(packet.count >> 8), UInt8(packet.count & 0xFF)] + packet }

    static func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            sent += n
        }
        return true
    }

    static func recvExactly(_ fd: Int32, _ count: Int) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = out.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, count - got, 0) }
            if n <= 0 { return nil }
            got += n
        }
        return out
    }

    /// Reads one length-framed message; nil on timeout or close.
    static func readFramed(_ fd: Int32) -> [UInt8]? {
        guard let len = recvExactly(fd, 2) else { return nil }
        return recvExactly(fd, Int(len[0]) << 8 | Int(len[1]))
    }

    static func id(_ m: [UInt8]) -> UInt16 { UInt16(m[0]) << 8 | UInt16(m[1]) }
    static func rcode(_ m: [UInt8]) -> Int { Int(m[3] & 0xF) }
    static func ancount(_ m: [UInt8]) -> Int { Int(m[6]) << 8 | Int(m[7]) }
}
