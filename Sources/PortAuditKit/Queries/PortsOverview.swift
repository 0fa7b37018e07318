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

    /// The listeners a scope can hold, found through an index: open intervals (interval_open),
    /// intervals that began or ended at a snapshot from `since` on (migration 0006), or the
    /// ports asked for (listener_by_port). The scope is then checked exactly on the whole
    /// history of each candidate. "Seen since" takes the listeners still open or whose
    /// interval ended (first snapshot without it) from `since` on: the snapshot before an end
    /// is never later than the end on a host whose clock goes forward. CROSS JOIN fixes the
    /// order (host, then its snapshots from `since`, then their intervals; candidates before
    /// listener), which SQLite without statistics would otherwise turn into table scans.
    static func candidatesSQL(_ scope: PortsFilter.Scope) -> String {
        switch scope {
        case .listeningNow:
            return "SELECT listener_id AS id FROM listener_interval WHERE last_snapshot_id IS NULL"
        case .seenSince:
            return """
                SELECT listener_id AS id FROM listener_interval WHERE last_snapshot_id IS NULL
                UNION
                SELECT i.listener_id FROM host h CROSS JOIN snapshot s ON s.host_id = h.id AND s.started_at >= :since
                CROSS JOIN listener_interval i ON i.ended_snapshot_id = s.id
                """
        case .newSince:
            return """
                SELECT i.listener_id AS id FROM host h CROSS JOIN snapshot s ON s.host_id = h.id AND s.started_at >= :since
                CROSS JOIN listener_interval i ON i.first_snapshot_id = s.id
                """
        case .all:
            return "SELECT id FROM listener"
        }
    }

    /// One row per candidate listener and holder name (one with a NULL name for a listener
    /// nobody readable held), from the summaries the writer keeps (migration 0007): the span of
    /// each listener, and per holder name the time held in intervals that ended; the open
    /// intervals, at most one per listener, add their time up to the latest snapshot here.
    /// An interval seen once counts 1 ms, and each process of the name counts.
    static func sql(scope: PortsFilter.Scope, ports: Bool, proto: Bool) -> String {
        var portCondition = ""
        if ports { portCondition = "WHERE l.port BETWEEN :firstPort AND :lastPort" + (proto ? " AND l.protocol = :proto" : "") }
        return """
            WITH latest AS (
                SELECT h.id AS host_id, h.hostname, (SELECT max(s.started_at) FROM snapshot s WHERE s.host_id = h.id) AS at,
                       \(HistoryQuery.hostNetns(of: "h.id")) AS netns_id
                FROM host h),
            chosen AS MATERIALIZED (
                SELECT DISTINCT l.id, n.host_id FROM (\(candidatesSQL(scope))) c
                CROSS JOIN listener l ON l.id = c.id JOIN netns n ON n.id = l.netns_id
                \(portCondition)),
            opened AS MATERIALIZED (
                SELECT c.id AS listener_id, i.id, f.started_at AS first_at, t.at AS last_at
                FROM chosen c
                CROSS JOIN listener_interval i ON i.listener_id = c.id AND i.last_snapshot_id IS NULL
                JOIN latest t ON t.host_id = c.host_id
                JOIN snapshot f ON f.id = i.first_snapshot_id),
            names AS (
                SELECT listener_id, name, sum(held_ms) AS held_for, max(latest_at) AS latest_at FROM (
                    SELECT hn.listener_id, hn.name, hn.held_ms, hn.latest_at
                    FROM chosen c CROSS JOIN listener_holder_name hn ON hn.listener_id = c.id
                    UNION ALL
                    SELECT o.listener_id, p.name, count(DISTINCT p.id) * max(1, o.last_at - o.first_at), o.last_at
                    FROM opened o JOIN holding hd ON hd.interval_id = o.id JOIN process p ON p.id = hd.process_id
                    GROUP BY o.id, p.name)
                GROUP BY listener_id, name)
            SELECT l.id AS listener_id, t.host_id, t.hostname, l.protocol, l.address, l.port, l.interface,
                   sp.first_at, o.listener_id IS NOT NULL AS listening,
                   CASE WHEN o.listener_id IS NOT NULL THEN max(o.last_at, coalesce(sp.last_closed_at, o.last_at))
                        ELSE sp.last_closed_at END AS last_at,
                   sp.holder_count, names.name, names.held_for, names.latest_at, sp.appeared_after,
                   n.inode AS netns_inode, n.name AS netns_name, n.id = t.netns_id AS netns_is_host
            FROM chosen c
            JOIN listener_span sp ON sp.listener_id = c.id
            JOIN listener l ON l.id = c.id
            JOIN netns n ON n.id = l.netns_id
            JOIN latest t ON t.host_id = n.host_id
            LEFT JOIN (SELECT DISTINCT listener_id, last_at FROM opened) o ON o.listener_id = c.id
            LEFT JOIN names ON names.listener_id = c.id
            """
    }

    /// A class, not a struct: sorting copied and released the struct at each step, a
    /// twentieth of the whole command (callgrind).
    private final class Listener {
        let hostID: Int64
        let namespace: RowNamespace
        let hostname: String
        let key: ListenerKey
        let firstAt: Int64
        let appearedAfter: Int64?
        let lastAt: Int64
        let listening: Bool
        let holderCount: Int
        /// (name, milliseconds held, last held at) of each holder name.
        var names: [(name: String, heldFor: Int64, latestAt: Int64)] = []

        /// The listener's columns of a query row.
        init(_ row: Row, namespace: RowNamespace) {
            hostID = row["host_id"]
            self.namespace = namespace
            hostname = row["hostname"]
            key = ListenerKey(proto: TransportProtocol(rawValue: row["protocol"]) ?? .tcp, address: row["address"],
                              port: UInt16(row["port"] as Int), interface: row["interface"])
            firstAt = row["first_at"]
            appearedAfter = row["appeared_after"]
            lastAt = row["last_at"]
            listening = row["listening"]
            holderCount = row["holder_count"]
        }
    }

    /// By listener, then hostname; the host's own namespace first, then the others by inode.
    private static func precedes(_ a: Listener, _ b: Listener) -> Bool {
        if a.key != b.key { return a.key < b.key }
        if a.hostname != b.hostname { return a.hostname < b.hostname }
        if a.namespace.isHost != b.namespace.isHost { return a.namespace.isHost }
        // Two hosts may share a name (a new machine-id); the order is still the same every run.
        return (a.namespace.inode, a.hostID) < (b.namespace.inode, b.hostID)
    }

    /// `--netns` is applied to the rows; `across_gap` marks a listener whose first and last
    /// seen enclose a gap in the snapshots: whether it listened then is unknown.
    func run(_ filter: PortsFilter) throws -> RecordTable {
        let namespaceFilter = try NamespaceFilter(filter.netns, db: db)
        var arguments: [String: (any DatabaseValueConvertible)?] = [:]
        switch filter.scope {
        case .seenSince(let since), .newSince(let since): arguments["since"] = Timestamp.milliseconds(since)
        case .listeningNow, .all: break
        }
        if let ports = filter.ports {
            arguments["firstPort"] = Int(ports.port)
            arguments["lastPort"] = Int(ports.lastPort)
            if let proto = ports.proto { arguments["proto"] = proto.rawValue }
        }
        let sql = Self.sql(scope: filter.scope, ports: filter.ports != nil, proto: filter.ports?.proto != nil)
        var listeners: [Int64: Listener] = [:]
        let rows = try Row.fetchCursor(db, sql: sql, arguments: StatementArguments(arguments))
        while let row = try rows.next() {
            let id: Int64 = row["listener_id"]
            if listeners[id] == nil {
                let namespace = RowNamespace(row)
                if !namespaceFilter.admits(namespace) { continue }
                listeners[id] = Listener(row, namespace: namespace)
            }
            if let name: String = row["name"], listeners[id] != nil {
                listeners[id]!.names.append((name, row["held_for"], row["latest_at"]))
            }
        }

        var table = RecordTable(fields: Self.fields)
        let sorted = listeners.values.sorted(by: Self.precedes)
        var gaps: [Int64: [CoverageGap]] = [:]
        for listener in sorted {
            let appearedAfter = listener.appearedAfter
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
            // The name that held it longest; then the one that held it last; then by name.
            if gaps[listener.hostID] == nil { gaps[listener.hostID] = try CoverageQuery(db: db).gaps(host: listener.hostID) }
            let acrossGap = !(gaps[listener.hostID]?.within(Timestamp.date(milliseconds: listener.firstAt),
                                                            Timestamp.date(milliseconds: listener.lastAt)).isEmpty ?? true)
            let main = listener.names.max { a, b in (a.heldFor, a.latestAt, b.name) < (b.heldFor, b.latestAt, a.name) }?.name
            table.append([
                .text(key.proto.rawValue), .text(key.address), .integer(key.port), .text(key.interface),
                .time(Timestamp.date(milliseconds: listener.firstAt)),
                .optional(appearedAfter.map(Timestamp.date(milliseconds:))),
                .time(Timestamp.date(milliseconds: listener.lastAt)),
                .bool(listener.listening),
                .optional(main), .integer(listener.holderCount),
                .optional(service), .text(range.rawValue),
                .bool(!reasons.isEmpty), reasons.isEmpty ? .null : .text(reasons.joined(separator: ", ")),
                .text(listener.hostname),
            ] + listener.namespace.fields + [.bool(acrossGap)])
        }
        return table
    }
}
