import Foundation

/// A port as people type it: 1328, 1328/tcp, ssh, ssh/udp.
public struct PortSpec: Equatable, Sendable, CustomStringConvertible {
    public var port: UInt16
    public var proto: TransportProtocol?

    public init(port: UInt16, proto: TransportProtocol? = nil) {
        self.port = port
        self.proto = proto
    }

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
        if let number = Int(body) {
            guard (1...65535).contains(number) else {
                throw Invalid(description: "invalid port '\(text)': a port is a number from 1 to 65535")
            }
            self.init(port: UInt16(number), proto: proto)
            return
        }
        let named = ServiceRegistry.ports(named: String(body)).filter { proto == nil || $0.proto == proto }
        guard !body.isEmpty, body.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }),
              let first = named.first else {
            throw Invalid(description: "invalid port '\(text)': expected a number from 1 to 65535 or an IANA service name, optionally followed by /tcp or /udp")
        }
        let distinct = Set(named.map(\.port))
        guard distinct.count == 1 else {
            let list = distinct.sorted().map(String.init).joined(separator: ", ")
            throw Invalid(description: "service '\(body)' names several ports (\(list)); give the number")
        }
        self.init(port: first.port, proto: proto)
    }

    public var description: String { proto.map { "\(port)/\($0.rawValue)" } ?? "\(port)" }
}
