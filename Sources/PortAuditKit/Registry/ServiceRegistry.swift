/// The IANA service name and port number registry, carried inside the binary.
public struct Registration: Hashable, Sendable, Codable {
    public var service: String
    public var proto: TransportProtocol
    public var description: String

    enum CodingKeys: String, CodingKey {
        case service, proto = "protocol", description
    }
}

public enum PortRange: String, Sendable, Codable {
    case wellKnown = "well-known"
    case registered
    case dynamic

    public init(port: UInt16) {
        switch port {
        case 0...1023: self = .wellKnown
        case 1024...49151: self = .registered
        default: self = .dynamic
        }
    }

    public var bounds: ClosedRange<Int> {
        switch self {
        case .wellKnown: 0...1023
        case .registered: 1024...49151
        case .dynamic: 49152...65535
        }
    }
}

public enum ServiceRegistry {
    struct Entry {
        var ports: ClosedRange<Int>
        var registration: Registration
    }

    /// Parsed on first use only: most commands never look a port up.
    static let entries: [Entry] = EmbeddedRegistry.tsv.split(separator: "\n").compactMap { line in
        let f = line.split(separator: "\t", omittingEmptySubsequences: false)
        guard f.count == 5, let first = Int(f[0]), let last = Int(f[1]), first <= last,
              let proto = TransportProtocol(rawValue: String(f[2])) else { return nil }
        return Entry(ports: first...last, registration: Registration(service: String(f[3]), proto: proto, description: String(f[4])))
    }

    /// Indices into `entries` by port, ranges expanded (about 57,000 ports): commands that
    /// name the service of thousands of rows would otherwise scan the registry per row.
    static let entriesByPort: [UInt16: [Int]] = {
        var index: [UInt16: [Int]] = [:]
        for (i, entry) in entries.enumerated() {
            for port in entry.ports where (0...65535).contains(port) { index[UInt16(port), default: []].append(i) }
        }
        return index
    }()

    /// Registrations of `port`, for one protocol or both. Unnamed rows ("Reserved",
    /// "Unassigned") come after named services.
    public static func lookup(port: UInt16, proto: TransportProtocol? = nil) -> [Registration] {
        let matches = (entriesByPort[port] ?? []).map { entries[$0] }
            .filter { proto == nil || $0.registration.proto == proto }
            .map(\.registration)
        var seen = Set<Registration>()
        return matches.filter { seen.insert($0).inserted }
            .sorted { ($0.service.isEmpty ? 1 : 0, $0.proto) < ($1.service.isEmpty ? 1 : 0, $1.proto) }
    }

    /// Ports registered under a service name ("ssh" → 22/tcp, 22/udp, ...).
    public static func ports(named service: String) -> [(port: UInt16, proto: TransportProtocol)] {
        let name = service.lowercased()
        return entries.filter { $0.registration.service.lowercased() == name && $0.ports.count == 1 }
            .map { (UInt16($0.ports.lowerBound), $0.registration.proto) }
    }
}

extension ServiceRegistry {
    /// The first named IANA service of a port, if it has one.
    public static func name(port: UInt16, proto: TransportProtocol?) -> String? {
        lookup(port: port, proto: proto).first { !$0.service.isEmpty }?.service
    }
}
