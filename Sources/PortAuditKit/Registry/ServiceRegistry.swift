#if canImport(Glibc)
import Glibc
#endif

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

    /// Where each row of the embedded text is, by port: built from the bytes on first use,
    /// without a String per field. Parsing the whole registry into `entries` cost more than
    /// the rest of `history` on a year-old store; a lookup now builds strings for its
    /// matches only.
    private struct RowIndex {
        /// Byte range of each row whose ports are one port, by port: one flat array searched
        /// by halves (a dictionary of arrays cost 11,000 allocations on every run).
        var single: [(port: UInt16, row: Range<Int>)] = []
        /// Rows that cover a range of ports, with it, in every bucket of 1,024 ports the range
        /// touches: a lookup scans a dozen rows of its bucket instead of all 760.
        var ranges = [[(ports: ClosedRange<Int>, row: Range<Int>)]](repeating: [], count: 64)
    }

    private static let rowIndex: RowIndex = {
        var index = RowIndex()
        var text = EmbeddedRegistry.tsv
        text.withUTF8 { bytes in
            guard let start = UnsafeRawPointer(bytes.baseAddress) else { return }
            var lineStart = 0
            while lineStart < bytes.count {
                // memchr: a byte loop in Swift over the 700 KB was a twentieth of `ports` (callgrind).
                let newline = memchr(start + lineStart, Int32(UInt8(ascii: "\n")), bytes.count - lineStart)
                let lineEnd = newline.map { UnsafeRawPointer($0) - start } ?? bytes.count
                defer { lineStart = lineEnd + 1 }
                var cursor = lineStart
                func number() -> Int? {
                    var value = 0, digits = 0
                    while cursor < lineEnd, bytes[cursor] >= 48, bytes[cursor] <= 57, digits < 6 {
                        value = value * 10 + Int(bytes[cursor] - 48)
                        cursor += 1
                        digits += 1
                    }
                    guard digits > 0, cursor < lineEnd, bytes[cursor] == UInt8(ascii: "\t") else { return nil }
                    cursor += 1
                    return value
                }
                guard let first = number(), let last = number(), first <= last, last <= 65535 else { continue }
                if first == last {
                    index.single.append((UInt16(first), lineStart..<lineEnd))
                } else {
                    for bucket in (first >> 10)...(last >> 10) { index.ranges[bucket].append((first...last, lineStart..<lineEnd)) }
                }
            }
        }
        // The build tool writes the rows in the registry's order, which is by port.
        if !zip(index.single, index.single.dropFirst()).allSatisfy({ $0.port <= $1.port }) {
            index.single.sort { $0.port < $1.port }
        }
        return index
    }()

    /// Registrations of `port`, for one protocol or both. Unnamed rows ("Reserved",
    /// "Unassigned") come after named services.
    public static func lookup(port: UInt16, proto: TransportProtocol? = nil) -> [Registration] {
        var matches: [Registration] = []
        forEachRow(of: port, proto: proto) { rowProto, service, description in
            matches.append(Registration(service: String(decoding: service, as: UTF8.self), proto: rowProto,
                                        description: String(decoding: description, as: UTF8.self)))
        }
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
    /// Byte ranges of the embedded rows that cover `port`: its own rows, then the ranges.
    private static func rows(of port: UInt16) -> [Range<Int>] {
        let index = rowIndex
        let first = firstIndex(in: index.single) { $0.port >= port }
        return index.single[first...].prefix { $0.port == port }.map(\.row)
            + index.ranges[Int(port) >> 10].filter { $0.ports.contains(Int(port)) }.map(\.row)
    }

    /// Calls `body` with the protocol, service and description of each row that covers
    /// `port`, in row order, for `proto` or both; the fields stay bytes until a caller decodes them.
    private static func forEachRow(of port: UInt16, proto: TransportProtocol?,
                                   _ body: (TransportProtocol, Slice<UnsafeBufferPointer<UInt8>>, Slice<UnsafeBufferPointer<UInt8>>) -> Void) {
        var text = EmbeddedRegistry.tsv
        text.withUTF8 { bytes in
            for row in rows(of: port) {
                let f = bytes[row].split(separator: UInt8(ascii: "\t"), omittingEmptySubsequences: false)
                guard f.count == 5, let rowProto = TransportProtocol(rawValue: String(decoding: f[2], as: UTF8.self)),
                      proto == nil || rowProto == proto else { continue }
                body(rowProto, f[3], f[4])
            }
        }
    }

    /// The first named IANA service of a port, if it has one, as `lookup` orders them: the
    /// least protocol, then the first row. Only the name is decoded: tables ask once a row.
    public static func name(port: UInt16, proto: TransportProtocol?) -> String? {
        var best: (proto: TransportProtocol, service: String)?
        forEachRow(of: port, proto: proto) { rowProto, service, _ in
            guard !service.isEmpty, best.map({ rowProto < $0.proto }) ?? true else { return }
            best = (rowProto, String(decoding: service, as: UTF8.self))
        }
        return best?.service
    }
}
