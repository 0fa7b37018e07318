/// Counts established TCP connections per listener, for `usage`: one more netlink dump
/// per address family, asking the kernel for ESTABLISHED sockets only.
enum ConnectionCounter {
    /// TCP_ESTABLISHED is state 1.
    static let establishedMask: UInt32 = 1 << 1

    /// Connections per TCP listener of `listeners`; nil when the kernel refused the dump.
    static func count(listeners: [ListenerKey]) -> [ListenerKey: Int]? {
        let tcp = listeners.filter { $0.proto == .tcp }
        var established: [RawSocket] = []
        for table in SocketTable.all where table.proto == .tcp {
            guard let sockets = try? SockDiag.dump(table, states: establishedMask) else { return nil }
            established += sockets
        }
        return attribute(established: established.map(\.key), to: tcp)
    }

    /// An accepted connection's local end is the listener's port on the address the client
    /// reached: the listener's own address, else the wildcard listener of its family.
    static func attribute(established: [ListenerKey], to listeners: [ListenerKey]) -> [ListenerKey: Int] {
        var byEndpoint: [String: ListenerKey] = [:]
        for key in listeners.sorted() where byEndpoint["\(key.address)|\(key.port)"] == nil {
            byEndpoint["\(key.address)|\(key.port)"] = key
        }
        var counts: [ListenerKey: Int] = [:]
        for key in Set(listeners) { counts[key] = 0 }
        for local in established {
            let wildcard = local.address.contains(":") ? "::" : "0.0.0.0"
            if let listener = byEndpoint["\(local.address)|\(local.port)"] ?? byEndpoint["\(wildcard)|\(local.port)"] {
                counts[listener, default: 0] += 1
            }
        }
        return counts
    }
}
