import Foundation

/// The listeners an administrator expects, one a line: `PORT/PROTO [ADDRESS|*] [PROGRAM]`.
/// `#` starts a comment. PROGRAM is the process name (as `ps` shows it) or the executable's
/// file name; an address or program left out matches any.
public struct Baseline: Sendable {
    public struct Entry: Hashable, Sendable, Encodable {
        public var port: UInt16
        public var proto: TransportProtocol
        public var address: String?
        public var program: String?
        /// Line in the file, for messages.
        public var line: Int

        public var text: String {
            "\(port)/\(proto.rawValue) \(address ?? "*")" + (program.map { " \($0)" } ?? "")
        }

        func matches(_ listener: Observed) -> Bool {
            listener.port == port && listener.proto == proto
                && (address == nil || address == listener.address)
                && (program == nil || listener.programs.contains(program!))
        }

        enum CodingKeys: String, CodingKey { case port, proto = "protocol", address, program, line }
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(port, forKey: .port)
            try c.encode(proto, forKey: .proto)
            try c.encode(address, forKey: .address)
            try c.encode(program, forKey: .program)
            try c.encode(line, forKey: .line)
        }
    }

    /// A listener as the baseline sees it: where, and the names of its holders.
    public struct Observed: Hashable, Sendable, Encodable {
        public var proto: TransportProtocol
        public var address: String
        public var port: UInt16
        /// Process names and executable file names of every holder; empty when unattributed.
        public var programs: Set<String>
        public var pids: [Int32]
        /// Why no holder is known, when none is.
        public var unattributed: String?

        public var text: String {
            let endpoint = Endpoint.text(address: address, port: port, interface: "")
            let who = pids.isEmpty ? "holder unknown: \(unattributed ?? "unknown")"
                : "\(programs.sorted().first ?? "?"), pid \(pids.map(String.init).joined(separator: ", "))"
            return "\(proto.rawValue) \(endpoint) (\(who))"
        }

        enum CodingKeys: String, CodingKey { case proto = "protocol", address, port, programs, pids, unattributed }
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(proto, forKey: .proto)
            try c.encode(address, forKey: .address)
            try c.encode(port, forKey: .port)
            try c.encode(programs.sorted(), forKey: .programs)
            try c.encode(pids, forKey: .pids)
            try c.encode(unattributed, forKey: .unattributed)
        }
    }

    public struct Invalid: Error, CustomStringConvertible {
        public var line: Int
        public var reason: String
        public var description: String { "baseline line \(line): \(reason)" }
    }

    /// The outcome: what listens but is not expected, and what is expected but not listening.
    public struct Result: Sendable, Encodable {
        public var unexpected: [Observed]
        public var missing: [Entry]
        public var listeners: Int
        public var ok: Bool { unexpected.isEmpty && missing.isEmpty }

        enum CodingKeys: String, CodingKey { case unexpected, missing, listeners, ok }
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(unexpected, forKey: .unexpected)
            try c.encode(missing, forKey: .missing)
            try c.encode(listeners, forKey: .listeners)
            try c.encode(ok, forKey: .ok)
        }
    }

    public var entries: [Entry]

    public init(parsing text: String) throws {
        entries = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = index + 1
            let content = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let fields = content.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard let first = fields.first else { continue }
            guard fields.count <= 3 else { throw Invalid(line: line, reason: "expected PORT/PROTO [ADDRESS|*] [PROGRAM], found \(fields.count) fields") }
            let parts = first.split(separator: "/", omittingEmptySubsequences: false)
            guard parts.count == 2, let port = UInt16(parts[0]), port > 0 else {
                throw Invalid(line: line, reason: "\"\(first)\" is not PORT/PROTO (22/tcp, 53/udp)")
            }
            guard let proto = TransportProtocol(rawValue: parts[1].lowercased()) else {
                throw Invalid(line: line, reason: "protocol must be tcp or udp, not \"\(parts[1])\"")
            }
            var address: String?
            if fields.count > 1 && fields[1] != "*" {
                let bare = fields[1].hasPrefix("[") && fields[1].hasSuffix("]") ? String(fields[1].dropFirst().dropLast()) : fields[1]
                guard Self.isAddress(bare) else { throw Invalid(line: line, reason: "\"\(fields[1])\" is not an IP address or *") }
                address = bare
            }
            entries.append(Entry(port: port, proto: proto, address: address, program: fields.count > 2 ? fields[2] : nil, line: line))
        }
    }

    static func isAddress(_ text: String) -> Bool {
        var v4 = in_addr(), v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }

    /// Listeners grouped by (protocol, address, port), holders' names collected.
    public static func observed(_ listeners: [CurrentListener]) -> [Observed] {
        var grouped: [String: Observed] = [:]
        for listener in listeners {
            let key = "\(listener.proto.rawValue) \(listener.address) \(listener.port)"
            var entry = grouped[key] ?? Observed(proto: listener.proto, address: listener.address, port: listener.port,
                                                 programs: [], pids: [], unattributed: nil)
            for holder in listener.processes {
                entry.programs.insert(holder.name)
                if let exe = holder.exe { entry.programs.insert((exe as NSString).lastPathComponent) }
                if !entry.pids.contains(holder.pid) { entry.pids.append(holder.pid) }
            }
            if listener.processes.isEmpty && entry.pids.isEmpty { entry.unattributed = listener.unattributed }
            grouped[key] = entry
        }
        return grouped.values.sorted { ($0.port, $0.proto, $0.address) < ($1.port, $1.proto, $1.address) }
    }

    public func check(_ listeners: [CurrentListener]) -> Result {
        let observed = Self.observed(listeners)
        return Result(unexpected: observed.filter { listener in !entries.contains { $0.matches(listener) } },
                      missing: entries.filter { entry in !observed.contains { entry.matches($0) } },
                      listeners: observed.count)
    }

    /// A starting file: every listener now, with the name of its first holder.
    public static func text(for listeners: [CurrentListener], generated: Date = Date()) -> String {
        var lines = ["# portaudit baseline, written \(Timestamp.iso(generated)) by `portaudit baseline save`.",
                     "# PORT/PROTO ADDRESS|* [PROGRAM]; check with `portaudit check --baseline FILE`."]
        var seen = Set<String>()
        for listener in observed(listeners) {
            let holder = listeners.first { $0.port == listener.port && $0.proto == listener.proto && $0.address == listener.address }?
                .processes.first?.name
            let line = "\(listener.port)/\(listener.proto.rawValue) \(listener.address)" + (holder.map { " \($0)" } ?? "")
            if seen.insert(line).inserted { lines.append(line) }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
