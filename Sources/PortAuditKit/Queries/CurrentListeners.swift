import Foundation

/// A socket listening now, with its holders described: what `portaudit now` prints.
public struct CurrentListener: Encodable, Sendable {
    public var proto: TransportProtocol
    public var address: String
    public var port: UInt16
    public var interface: String
    public var inode: UInt64
    public var socketUid: UInt32
    public var processes: [HolderView]
    /// Why no holder was found, when `processes` is empty.
    public var unattributed: String?
    public var service: String?
    /// Inode of the network namespace it listens in, and that namespace's /run/netns name.
    public var netns: UInt64
    public var netnsName: String?
    /// Whether that namespace is portaudit's own (the host's).
    public var netnsIsHost: Bool

    enum CodingKeys: String, CodingKey {
        case proto = "protocol", address, port, interface, inode, socketUid, processes, unattributed, service,
             netns, netnsName, netnsIsHost
    }
}

extension ListenerSource {
    /// Observes and describes every holder, without touching any store.
    public func currentListeners() throws -> (listeners: [CurrentListener], observation: Observation) {
        let observation = try observe()
        let details = describe(observation.holderProcesses)
        let names = Dictionary(observation.namespacesRead.map { ($0.inode, $0.name) }) { a, _ in a }
        let listeners = observation.sockets.map { socket in
            let netns = observation.namespace(of: socket)
            return CurrentListener(
                proto: socket.key.proto, address: socket.key.address, port: socket.key.port,
                interface: socket.key.interface, inode: socket.inode, socketUid: socket.uid,
                processes: socket.holders.map { holder in
                    let d = details[holder.process]
                    return HolderView(pid: holder.process.pid,
                                      name: d?.name ?? observation.processNames[holder.process] ?? "?",
                                      user: d?.user, uid: d?.uid, exe: d?.exe, cmdline: d?.cmdline, ppid: d?.ppid,
                                      startedAt: d?.startedAt, fd: holder.fd, inode: socket.inode, container: d?.container)
                },
                unattributed: socket.holders.isEmpty ? socket.unattributedReason : nil,
                service: ServiceRegistry.name(port: socket.key.port, proto: socket.key.proto),
                netns: netns, netnsName: names[netns] ?? nil, netnsIsHost: netns == observation.netnsInode)
        }.sorted { a, b in
            if a.key != b.key { return a.key < b.key }
            if a.netnsIsHost != b.netnsIsHost { return a.netnsIsHost }
            return (a.netns, a.inode) < (b.netns, b.inode)
        }
        return (listeners, observation)
    }
}

extension CurrentListener {
    var key: ListenerKey { ListenerKey(proto: proto, address: address, port: port, interface: interface) }
}


extension CurrentListener {
    /// Absent values are written as null, so every record has every field.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(proto, forKey: .proto)
        try c.encode(address, forKey: .address)
        try c.encode(port, forKey: .port)
        try c.encode(interface, forKey: .interface)
        try c.encode(inode, forKey: .inode)
        try c.encode(socketUid, forKey: .socketUid)
        try c.encode(processes, forKey: .processes)
        try c.encode(unattributed, forKey: .unattributed)
        try c.encode(service, forKey: .service)
        try c.encode(netns, forKey: .netns)
        try c.encode(netnsName, forKey: .netnsName)
        try c.encode(netnsIsHost, forKey: .netnsIsHost)
    }
}
