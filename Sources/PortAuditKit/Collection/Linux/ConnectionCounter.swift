/// Counts established TCP connections per listener, for `usage`. The connections come
/// from the same netlink requests as the listeners (LinuxListenerSource.enumerate).
enum ConnectionCounter {
    /// TCP_ESTABLISHED is state 1.
    static let establishedMask: UInt32 = 1 << 1

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
