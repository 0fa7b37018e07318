import Foundation

/// A port as people type it: 1328, 1328/tcp, ssh, ssh/udp, or a range 8000-8100[/tcp].
public struct PortSpec: Equatable, Sendable, CustomStringConvertible {
    /// The port, or the first port of a range.
    public var port: UInt16
    /// The last port of a range; equal to `port` for a single port.
    public var lastPort: UInt16
    public var proto: TransportProtocol?

    public init(port: UInt16, proto: TransportProtocol? = nil) {
        self.port = port
        self.lastPort = port
        self.proto = proto
    }

    public init(ports: ClosedRange<UInt16>, proto: TransportProtocol? = nil) {
        self.port = ports.lowerBound
        self.lastPort = ports.upperBound
        self.proto = proto
    }

    public var ports: ClosedRange<UInt16> { port...lastPort }
    public var isRange: Bool { lastPort != port }

    public struct Invalid: Error, CustomStringConvertible {
        public var description: String
    }

    public init(parsing text: String) throws {
        var body = Substring(text.trimmingCharacters(in: .whitespaces))
        var proto: TransportProtocol?
        if let slash = body.lastIndex(of: "/") {
            let suffix = body[body.index(after: slash)...].lowercased()
            guard let p = TransportProtocol(rawValue: suffix) else {
                throw Invalid(description: "invalid port '\(text)': the protocol after '/' must be tcp or udp")
            }
            proto = p
            body = body[..<slash]
        }
        // Digits only: Int would also take a sign ("+22" is no way to write port 22).
        func digits(_ text: Substring) -> Bool { !text.isEmpty && text.allSatisfy { $0.isASCII && $0.isNumber } }
        if digits(body) {
            self.init(port: try Self.number(Int(body) ?? Int.max, in: text), proto: proto)
            return
        }
        // 8000-8100: two numbers. A service name may hold a dash too (http-alt), so only
        // digits on both sides make a range.
        let halves = body.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        if halves.count == 2, halves.allSatisfy(digits) {
            let first = try Self.number(Int(halves[0]) ?? Int.max, in: text)
            let last = try Self.number(Int(halves[1]) ?? Int.max, in: text)
            guard first <= last else {
                throw Invalid(description: "invalid port range '\(text)': the first port must not be above the last")
            }
            self.init(ports: first...last, proto: proto)
            return
        }
        let named = ServiceRegistry.ports(named: String(body)).filter { proto == nil || $0.proto == proto }
        guard !body.isEmpty, body.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }),
              let first = named.first else {
            throw Invalid(description: "invalid port '\(text)': expected a number from 1 to 65535, a range such as 8000-8100, or an IANA service name, optionally followed by /tcp or /udp")
        }
        let distinct = Set(named.map(\.port))
        guard distinct.count == 1 else {
            let list = distinct.sorted().map(String.init).joined(separator: ", ")
            throw Invalid(description: "service '\(body)' names several ports (\(list)); give the number")
        }
        self.init(port: first.port, proto: proto)
    }

    private static func number(_ number: Int, in text: String) throws -> UInt16 {
        guard (1...65535).contains(number) else {
            throw Invalid(description: "invalid port '\(text)': a port is a number from 1 to 65535")
        }
        return UInt16(number)
    }

    public func matches(port: UInt16, proto: TransportProtocol) -> Bool {
        ports.contains(port) && (self.proto == nil || self.proto == proto)
    }

    public var description: String {
        let ports = isRange ? "\(port)-\(lastPort)" : "\(port)"
        return proto.map { "\(ports)/\($0.rawValue)" } ?? ports
    }
}
