/// The four kinds of socket table, as the kernel splits them.
struct SocketTable: Hashable, Sendable, CustomStringConvertible {
    var proto: TransportProtocol
    var ipv6: Bool

    static let all: [SocketTable] = [
        SocketTable(proto: .tcp, ipv6: false), SocketTable(proto: .tcp, ipv6: true),
        SocketTable(proto: .udp, ipv6: false), SocketTable(proto: .udp, ipv6: true),
    ]

    /// The kernel state that means "listening" for this protocol: LISTEN for TCP, and for
    /// UDP the CLOSE state of a bound socket that has no peer (a connected one is ESTABLISHED).
    var listeningState: UInt8 { proto == .tcp ? Self.tcpListen : 7 }
    static let tcpListen: UInt8 = 10
    static let tcpEstablished: UInt8 = 1

    /// /proc/net file name: tcp, tcp6, udp, udp6.
    var procName: String { proto.rawValue + (ipv6 ? "6" : "") }
    var description: String { procName }
}

/// A socket as the kernel's tables list it, before holders are known.
struct RawSocket: Hashable, Sendable {
    var key: ListenerKey
    var inode: UInt64
    var uid: UInt32
    /// For a listening TCP socket, connections waiting in the accept queue.
    var receiveQueue: UInt32
    /// Inode of the network namespace whose table listed it; set after enumeration.
    var netns: UInt64 = 0
}
