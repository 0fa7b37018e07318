/// Counts established TCP connections per listener, for `usage`. The connections come
/// from the same netlink requests or /proc/net reads as the listeners (LinuxListenerSource.enumerate).
enum ConnectionCounter {
    static let establishedMask: UInt32 = 1 << UInt32(SocketTable.tcpEstablished)

    /// An accepted connection's local end is the listener's port on the address the client
    /// reached: the listener's own address, else the wildcard listener of its family.
    static func attribute(established: [ListenerKey], to listeners: [ListenerKey]) -> [ListenerKey: Int] {
        struct Endpoint: Hashable {
            var address: String
            var port: UInt16
        }
        var byEndpoint: [Endpoint: ListenerKey] = [:]
        var counts: [ListenerKey: Int] = [:]
        counts.reserveCapacity(listeners.count)
        byEndpoint.reserveCapacity(listeners.count)
        // Listeners sharing an endpoint differ by interface: the least key takes its
        // connections, as it would in sorted order (without sorting a thousand keys).
        for key in listeners {
            counts[key] = 0
            let endpoint = Endpoint(address: key.address, port: key.port)
            if let taken = byEndpoint[endpoint], taken <= key { continue }
            byEndpoint[endpoint] = key
        }
        for local in established {
            let wildcard = IPAddressText.isIPv6(local.address) ? "::" : "0.0.0.0"
            if let listener = byEndpoint[Endpoint(address: local.address, port: local.port)]
                ?? byEndpoint[Endpoint(address: wildcard, port: local.port)] {
                counts[listener, default: 0] += 1
            }
        }
        return counts
    }
}
