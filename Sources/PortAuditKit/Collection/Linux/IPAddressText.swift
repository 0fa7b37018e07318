#if canImport(Glibc)
import Glibc
#endif

enum IPAddressText {
    /// Network-order address bytes (4 or 16) as text, in the form inet_ntop gives and ss prints.
    static func format(_ bytes: [UInt8]) -> String {
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let ok = bytes.withUnsafeBytes { raw in
            inet_ntop(family, raw.baseAddress, &buffer, socklen_t(buffer.count)) != nil
        }
        return ok ? String(nulTerminated: buffer) : "?"
    }
}
