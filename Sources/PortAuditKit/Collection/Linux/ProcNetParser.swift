/// Parses /proc/net/{tcp,tcp6,udp,udp6}: the fallback where netlink sock_diag is refused.
///
/// A line reads `sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...`, where the
/// local address is the kernel's hex dump of the address words in host byte order.
enum ProcNetParser {
    struct Result: Equatable {
        var sockets: [RawSocket]
        /// Local ends of established TCP connections, when asked for (for `usage`).
        var established: [ListenerKey] = []
        /// Lines that could not be understood, with their 1-based line numbers.
        var malformed: [Int]
    }

    static func parse(_ text: String, table: SocketTable, established wantEstablished: Bool = false) -> Result {
        var sockets: [RawSocket] = []
        var established: [ListenerKey] = []
        var malformed: [Int] = []
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if index == 0 || fields.isEmpty { continue }  // header, trailing newline
            guard fields.count >= 10,
                  let state = UInt8(fields[3], radix: 16),
                  let (address, port) = parseEndpoint(fields[1], ipv6: table.ipv6),
                  let queues = Optional(fields[4].split(separator: ":")), queues.count == 2,
                  let receiveQueue = UInt32(queues[1], radix: 16),
                  let uid = UInt32(fields[7]),
                  let inode = UInt64(fields[9])
            else {
                malformed.append(index + 1)
                continue
            }
            guard state == table.listeningState else {
                if wantEstablished && table.proto == .tcp && state == SocketTable.tcpEstablished {
                    established.append(ListenerKey(proto: .tcp, address: address, port: port))
                }
                continue
            }
            // A UDP socket in CLOSE with no local port is not bound to anything.
            if table.proto == .udp && port == 0 { continue }
            let key = ListenerKey(proto: table.proto, address: address, port: port)
            sockets.append(RawSocket(key: key, inode: inode, uid: uid, receiveQueue: receiveQueue))
        }
        return Result(sockets: sockets, established: established, malformed: malformed)
    }

    /// "0100007F:1F90" → ("127.0.0.1", 8080); IPv6 uses four such words.
    static func parseEndpoint(_ text: Substring, ipv6: Bool) -> (String, UInt16)? {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let port = UInt16(parts[1], radix: 16) else { return nil }
        let hex = parts[0]
        guard hex.count == (ipv6 ? 32 : 8) else { return nil }
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 8)
            guard let word = UInt32(hex[index..<next], radix: 16) else { return nil }
            // The kernel printed each 32-bit word as a host-order integer (little endian here).
            let w = word.littleEndian
            bytes += [UInt8(w & 0xff), UInt8((w >> 8) & 0xff), UInt8((w >> 16) & 0xff), UInt8(w >> 24)]
            index = next
        }
        return (IPAddressText.format(bytes), port)
    }
}
