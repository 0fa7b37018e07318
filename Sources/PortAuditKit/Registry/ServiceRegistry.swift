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

    /// Parsed on first use only, for looking services up by name.
    static let entries: [Entry] = EmbeddedRegistry.tsv.split(separator: "\n").compactMap { line in
        let f = line.split(separator: "\t", omittingEmptySubsequences: false)
        guard f.count == 5, let first = Int(f[0]), let last = Int(f[1]), first <= last,
              let proto = TransportProtocol(rawValue: String(f[2])) else { return nil }
        return Entry(ports: first...last, registration: Registration(service: String(f[3]), proto: proto, description: String(f[4])))
    }

    /// Which lines of the registry name each port, read from the two port fields only: a
    /// command that looks up one port (history) or a few hundred (changes, ports) must not pay
    /// for making strings of all 14,000 lines and a 57,000-key dictionary at every start,
    /// which cost about 50 ms, more than the query. Strings are made for matching lines only.
    struct PortIndex {
        let bytes: [UInt8]
        /// Byte range of each line.
        var lineStart: [Int32] = []
        var lineEnd: [Int32] = []
        /// The lines of port p are lines[offsets[p] ..< offsets[p + 1]], in registry order.
        var offsets = [Int32](repeating: 0, count: 65537)
        var lines: [Int32] = []

        init(_ text: String) {
            bytes = Array(text.utf8)
            var ranges: [(first: Int, last: Int)] = []
            var i = 0
            while i < bytes.count {
                let start = i
                while i < bytes.count && bytes[i] != UInt8(ascii: "\n") { i += 1 }
                let end = i
                i += 1
                var j = start
                func number() -> Int? {
                    var value = 0, digits = 0
                    while j < end, bytes[j] >= 48, bytes[j] <= 57, digits < 6 {
                        value = value * 10 + Int(bytes[j] - 48); j += 1; digits += 1
                    }
                    guard digits > 0, j < end, bytes[j] == UInt8(ascii: "\t") else { return nil }
                    j += 1
                    return value
                }
                guard let first = number(), let last = number(), first <= last, last <= 65535 else { continue }
                lineStart.append(Int32(start))
                lineEnd.append(Int32(end))
                ranges.append((first, last))
                for port in first...last { offsets[port + 1] += 1 }
            }
            for port in 0..<65536 { offsets[port + 1] += offsets[port] }
            var next = Array(offsets.dropLast())
            lines = [Int32](repeating: 0, count: Int(offsets[65536]))
            for (line, range) in ranges.enumerated() {
                for port in range.first...range.last {
                    lines[Int(next[port])] = Int32(line)
                    next[port] += 1
                }
            }
        }

        /// The registrations of a port, in registry order; a line that is not five fields
        /// with tcp or udp is skipped, as when the whole registry is parsed.
        func registrations(port: UInt16) -> [Registration] {
            (offsets[Int(port)]..<offsets[Int(port) + 1]).compactMap { index in
                let line = Int(lines[Int(index)])
                let f = bytes[Int(lineStart[line])..<Int(lineEnd[line])].split(separator: UInt8(ascii: "\t"),
                                                                                 omittingEmptySubsequences: false)
                guard f.count == 5, let proto = TransportProtocol(rawValue: String(decoding: f[2], as: UTF8.self))
                else { return nil }
                return Registration(service: String(decoding: f[3], as: UTF8.self), proto: proto,
                                    description: String(decoding: f[4], as: UTF8.self))
            }
        }
    }

    static let portIndex = PortIndex(EmbeddedRegistry.tsv)

    /// Registrations of `port`, for one protocol or both. Unnamed rows ("Reserved",
    /// "Unassigned") come after named services.
    public static func lookup(port: UInt16, proto: TransportProtocol? = nil) -> [Registration] {
        let matches = portIndex.registrations(port: port).filter { proto == nil || $0.proto == proto }
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
