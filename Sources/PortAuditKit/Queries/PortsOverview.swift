import Foundation
import GRDB

/// Which ports `ports` lists.
public struct PortsFilter: Sendable {
    public enum Scope: Sendable {
        /// Listening at the host's latest snapshot.
        case listeningNow
        /// Seen listening at any snapshot from this time on.
        case seenSince(Date)
        /// First seen from this time on, after a snapshot that did not see them.
        case newSince(Date)
        /// Every port ever seen.
        case all
    }

    public var scope: Scope
    /// Only ports worth a look (no registered service, or in the dynamic range).
    public var worthALookOnly: Bool
    public var ports: PortSpec?
    public var netns: NamespaceSelection

    public init(scope: Scope, worthALookOnly: Bool = false, ports: PortSpec? = nil, netns: NamespaceSelection = .all) {
        self.scope = scope
        self.worthALookOnly = worthALookOnly
        self.ports = ports
        self.netns = netns
    }
}

extension Store {
    /// One row per listener (protocol, address, port, interface) the store has seen.
    public func ports(_ filter: PortsFilter) throws -> RecordTable {
        try read { db in try PortsQuery(db: db).run(filter) }
    }
}

struct PortsQuery {
    let db: Database

    static let fields = [FieldName.proto, FieldName.address, FieldName.port, FieldName.interface,
                         FieldName.firstSeen, "appeared_after", FieldName.lastSeen, FieldName.listening,
                         "main_holder", "holder_count", FieldName.service, FieldName.range,
                         "worth_a_look", "look_reason", FieldName.hostname]
        + RowNamespace.fieldNames + [FieldName.acrossGap]

    private struct Listener {
        var hostID: Int64
        var hostname: String
        var key: ListenerKey
        var namespace: RowNamespace
        /// Some interval of it spans a gap in the snapshots: it was not seen listening then.
        var acrossGap = false
        var firstSnapshot: Int64 = .max
        var firstAt: Int64 = .max
        var lastAt: Int64 = .min
        var listening = false
        var processes = Set<Int64>()
        /// Milliseconds each process name held it (an interval seen once counts 1).
        var heldFor: [String: Int64] = [:]
        var latestHolderAt: [String: Int64] = [:]
    }

    func run(_ filter: PortsFilter) throws -> RecordTable {
        let namespaceFilter = try NamespaceFilter(filter.netns, db: db)
        var coverage: [Int64: HostCoverage] = [:]
        var latest: [Int64: Int64] = [:]
        for row in try Row.fetchAll(db, sql: """
            SELECT host_id, started_at FROM snapshot s
            WHERE id = (SELECT max(id) FROM snapshot t WHERE t.host_id = s.host_id)
            """) {
            latest[row["host_id"]] = row["started_at"]
        }

        var names: [Int64: [(process: Int64, name: String)]] = [:]
        for row in try Row.fetchAll(db, sql: """
            SELECT DISTINCT h.interval_id, p.id, p.name FROM holding h JOIN process p ON p.id = h.process_id
            """) {
            names[row[0], default: []].append((row[1], row[2]))
        }

        var listeners: [Int64: Listener] = [:]
        var portCondition = ""
        var arguments: StatementArguments = []
        if let ports = filter.ports {
            portCondition = "WHERE l.port BETWEEN ? AND ?"
            arguments += [Int(ports.port), Int(ports.lastPort)]
            if let proto = ports.proto {
                portCondition += " AND l.protocol = ?"
                arguments += [proto.rawValue]
            }
        }
        for row in try Row.fetchAll(db, sql: """
            SELECT l.id AS listener_id, n.host_id, h.hostname, l.protocol, l.address, l.port, l.interface,
                   i.id AS interval_id, i.first_snapshot_id, f.started_at AS first_at, la.started_at AS last_at,
                   n.inode AS netns_inode, n.name AS netns_name, n.id = \(HistoryQuery.hostNetns) AS netns_is_host
            FROM listener l
            JOIN netns n ON n.id = l.netns_id
            JOIN host h ON h.id = n.host_id
            JOIN listener_interval i ON i.listener_id = l.id
            JOIN snapshot f ON f.id = i.first_snapshot_id
            LEFT JOIN snapshot la ON la.id = i.last_snapshot_id
            \(portCondition)
            """, arguments: arguments) {
            let id: Int64 = row["listener_id"]
            let hostID: Int64 = row["host_id"]
            let key = ListenerKey(proto: TransportProtocol(rawValue: row["protocol"]) ?? .tcp, address: row["address"],
                                  port: UInt16(row["port"] as Int), interface: row["interface"])
            let namespace = RowNamespace(inode: UInt64(bitPattern: row["netns_inode"] as Int64), name: row["netns_name"],
                                         isHost: row["netns_is_host"] ?? false)
            if !namespaceFilter.admits(namespace) { continue }
            var listener = listeners[id] ?? Listener(hostID: hostID, hostname: row["hostname"], key: key, namespace: namespace)
            let firstAt: Int64 = row["first_at"]
            let open = (row["last_at"] as Int64?) == nil
            let lastAt: Int64 = row["last_at"] ?? latest[hostID] ?? firstAt
            if coverage[hostID] == nil { coverage[hostID] = try CoverageQuery(db: db).host(hostID) }
            if let gaps = coverage[hostID]?.gaps(within: Timestamp.date(milliseconds: firstAt), Timestamp.date(milliseconds: lastAt)),
               !gaps.isEmpty {
                listener.acrossGap = true
            }
            if firstAt < listener.firstAt {
                listener.firstAt = firstAt
                listener.firstSnapshot = row["first_snapshot_id"]
            }
            listener.lastAt = max(listener.lastAt, lastAt)
            listener.listening = listener.listening || open
            for holder in names[row["interval_id"]] ?? [] {
                listener.processes.insert(holder.process)
                listener.heldFor[holder.name, default: 0] += max(1, lastAt - firstAt)
                listener.latestHolderAt[holder.name] = max(listener.latestHolderAt[holder.name] ?? .min, lastAt)
            }
            listeners[id] = listener
        }

        let previous = try db.cachedStatement(sql: """
            SELECT started_at FROM snapshot WHERE host_id = ? AND id < ? ORDER BY id DESC LIMIT 1
            """)
        var table = RecordTable(fields: Self.fields)
        let sorted = listeners.values.sorted {
            // The host's own listener first, then other namespaces by inode.
            ($0.key, $0.hostname, $0.namespace.isHost ? 0 : 1, $0.namespace.inode)
                < ($1.key, $1.hostname, $1.namespace.isHost ? 0 : 1, $1.namespace.inode)
        }
        for listener in sorted {
            let appearedAfter = try Int64.fetchOne(previous, arguments: [listener.hostID, listener.firstSnapshot])
            switch filter.scope {
            case .listeningNow: if !listener.listening { continue }
            case .seenSince(let since): if listener.lastAt < Timestamp.milliseconds(since) { continue }
            case .newSince(let since):
                if appearedAfter == nil || listener.firstAt < Timestamp.milliseconds(since) { continue }
            case .all: break
            }
            let key = listener.key
            let service = ServiceRegistry.name(port: key.port, proto: key.proto)
            let range = PortRange(port: key.port)
            var reasons: [String] = []
            if service == nil { reasons.append("unregistered") }
            if range == .dynamic { reasons.append("dynamic range") }
            if filter.worthALookOnly && reasons.isEmpty { continue }
            let main = listener.heldFor.max { a, b in
                (a.value, listener.latestHolderAt[a.key] ?? 0, b.key) < (b.value, listener.latestHolderAt[b.key] ?? 0, a.key)
            }?.key
            table.append([
                .text(key.proto.rawValue), .text(key.address), .integer(key.port), .text(key.interface),
                .time(Timestamp.date(milliseconds: listener.firstAt)),
                .optional(appearedAfter.map(Timestamp.date(milliseconds:))),
                .time(Timestamp.date(milliseconds: listener.lastAt)),
                .bool(listener.listening),
                .optional(main), .integer(listener.processes.count),
                .optional(service), .text(range.rawValue),
                .bool(!reasons.isEmpty), reasons.isEmpty ? .null : .text(reasons.joined(separator: ", ")),
                .text(listener.hostname),
            ] + listener.namespace.fields + [.bool(listener.acrossGap)])
        }
        return table
    }
}
