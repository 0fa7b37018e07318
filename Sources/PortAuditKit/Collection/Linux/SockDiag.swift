#if canImport(Glibc)
import Glibc
#endif
import CLinuxDiag

/// Enumerates sockets with NETLINK_SOCK_DIAG, asking the kernel for the states wanted only
/// (listening, and for `usage` established TCP), so nothing else is copied out.
struct SockDiag {
    struct Failure: Error, CustomStringConvertible {
        var label: String
        var code: Int32
        var description: String { "sock_diag \(label): \(ProcFiles.errorDescription(code))" }
    }

    /// The sockets of one table in the kernel `states` (a mask of 1 << state), by default
    /// the listening one.
    static func dump(_ table: SocketTable, states: UInt32? = nil) throws -> [(socket: RawSocket, state: UInt8)] {
        var message = cld_diag_request()
        message.header.nlmsg_len = UInt32(MemoryLayout<cld_diag_request>.size)
        message.header.nlmsg_type = UInt16(SOCK_DIAG_BY_FAMILY)
        message.header.nlmsg_flags = UInt16(NLM_F_REQUEST | NLM_F_DUMP)
        message.header.nlmsg_seq = 1
        message.request.sdiag_family = UInt8(table.ipv6 ? AF_INET6 : AF_INET)
        message.request.sdiag_protocol = UInt8(table.proto == .tcp ? IPPROTO_TCP : IPPROTO_UDP)
        message.request.idiag_states = states ?? 1 << UInt32(table.listeningState)
        return try run(&message, label: table.description, proto: table.proto)
    }

    /// The TCP sockets of both address families in the kernel `states`, in one request: the
    /// original inet_diag request (TCPDIAG_GETSOCK), unlike SOCK_DIAG_BY_FAMILY, takes
    /// AF_UNSPEC, so the kernel walks its TCP hash tables once instead of once per family.
    /// For the established table (262,144 buckets here) that walk is most of the dump's cost.
    static func dumpTCP(states: UInt32) throws -> [(socket: RawSocket, state: UInt8)] {
        var message = cld_diag_request_compat()
        message.header.nlmsg_len = UInt32(MemoryLayout<cld_diag_request_compat>.size)
        message.header.nlmsg_type = UInt16(TCPDIAG_GETSOCK)
        message.header.nlmsg_flags = UInt16(NLM_F_REQUEST | NLM_F_DUMP)
        message.header.nlmsg_seq = 1
        message.request.idiag_family = UInt8(AF_UNSPEC)
        message.request.idiag_states = states
        return try run(&message, label: "tcp", proto: .tcp)
    }

    private static func run<Request>(_ message: inout Request, label: String,
                                     proto: TransportProtocol) throws -> [(socket: RawSocket, state: UInt8)] {
        let fd = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), NETLINK_SOCK_DIAG)
        guard fd >= 0 else { throw Failure(label: label, code: errno) }
        defer { close(fd) }
        var kernel = sockaddr_nl()
        kernel.nl_family = sa_family_t(AF_NETLINK)
        let sent = withUnsafeBytes(of: &message) { bytes in
            withUnsafePointer(to: &kernel) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, bytes.baseAddress, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_nl>.size))
                }
            }
        }
        guard sent >= 0 else { throw Failure(label: label, code: errno) }

        var sockets: [(socket: RawSocket, state: UInt8)] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let received = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if received < 0 {
                if errno == EINTR { continue }
                throw Failure(label: label, code: errno)
            }
            if received == 0 { return sockets }
            let finished = try buffer.withUnsafeBytes { raw -> Bool in
                try parse(UnsafeRawBufferPointer(rebasing: raw[0..<received]), label: label, proto: proto, into: &sockets)
            }
            if finished { return sockets }
        }
    }

    /// Appends the sockets of one datagram; true once the dump is complete.
    private static func parse(_ data: UnsafeRawBufferPointer, label: String, proto: TransportProtocol,
                              into sockets: inout [(socket: RawSocket, state: UInt8)]) throws -> Bool {
        let headerSize = Int(cld_nlmsg_hdrlen())
        var offset = 0
        while offset + MemoryLayout<nlmsghdr>.size <= data.count {
            let header = data.loadUnaligned(fromByteOffset: offset, as: nlmsghdr.self)
            let length = Int(header.nlmsg_len)
            guard length >= MemoryLayout<nlmsghdr>.size, offset + length <= data.count else { return true }
            switch Int32(header.nlmsg_type) {
            case NLMSG_DONE:
                return true
            case NLMSG_ERROR:
                let error = data.loadUnaligned(fromByteOffset: offset + headerSize, as: nlmsgerr.self)
                throw Failure(label: label, code: -error.error)
            case Int32(SOCK_DIAG_BY_FAMILY), Int32(TCPDIAG_GETSOCK):
                if length - headerSize >= MemoryLayout<inet_diag_msg>.size {
                    let msg = data.loadUnaligned(fromByteOffset: offset + headerSize, as: inet_diag_msg.self)
                    if let socket = rawSocket(msg, proto: proto) { sockets.append((socket, msg.idiag_state)) }
                }
            default:
                break
            }
            offset += Int(cld_nlmsg_align(UInt32(length)))
        }
        return false
    }

    private static func rawSocket(_ msg: inet_diag_msg, proto: TransportProtocol) -> RawSocket? {
        let port = UInt16(bigEndian: msg.id.idiag_sport)
        if proto == .udp && port == 0 { return nil }
        var source = msg.id.idiag_src
        let address = withUnsafeBytes(of: &source) { IPAddressText.format($0.baseAddress!, ipv6: Int32(msg.idiag_family) == AF_INET6) }
        var interface = ""
        if msg.id.idiag_if != 0 {
            var name = [CChar](repeating: 0, count: Int(IF_NAMESIZE) + 1)
            if if_indextoname(msg.id.idiag_if, &name) != nil {
                interface = String(nulTerminated: name)
            } else {
                interface = "if\(msg.id.idiag_if)"
            }
        }
        let key = ListenerKey(proto: proto, address: address, port: port, interface: interface)
        return RawSocket(key: key, inode: UInt64(msg.idiag_inode), uid: msg.idiag_uid, receiveQueue: msg.idiag_rqueue)
    }
}
