import Foundation
import GRDB

extension Store {
    /// Opened, closed and changed listeners whose time bounds meet `window`, in order.
    public func changes(in window: TimeWindow, ports: PortSpec? = nil, netns: NamespaceSelection = .all) throws -> RecordTable {
        try read { db in try ChangesQuery(db: db).run(window: window, ports: ports, netns: netns) }
    }
}

struct ChangesQuery {
    let db: Database

    static let fields = ["event", "happened_after", "happened_by", FieldName.proto, FieldName.address, FieldName.port,
                         FieldName.interface, "holders_before", "holders_after", FieldName.service, FieldName.hostname]
        + RowNamespace.fieldNames + [FieldName.acrossGap]

    /// An event is in the window when it may have happened there: the snapshot that saw it
    /// is not before `since`, and the one before it is before `until`.
    func run(window: TimeWindow, ports: PortSpec?, netns: NamespaceSelection = .all) throws -> RecordTable {
        let namespaceFilter = try NamespaceFilter(netns, db: db)
        var conditions: [String] = []
        var arguments: StatementArguments = []
        if let since = window.sinceText {
            conditions.append("happened_by >= ?")
            arguments += [since]
        }
        if let until = window.untilText {
            conditions.append("(happened_after IS NULL OR happened_after < ?)")
            arguments += [until]
        }
        if let ports {
            conditions.append("port BETWEEN ? AND ?")
            arguments += [Int(ports.port), Int(ports.lastPort)]
            if let proto = ports.proto {
                conditions.append("protocol = ?")
                arguments += [proto.rawValue]
            }
        }
        let sql = """
            SELECT event, happened_after, happened_by, protocol, address, port, interface,
                   holders_before, holders_after, hostname, snapshot_id
            FROM port_events
            \(conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND "))
            ORDER BY happened_by, snapshot_id, port, protocol, address, interface,
                     CASE event WHEN 'closed' THEN 0 ELSE 1 END
            """
        var table = RecordTable(fields: Self.fields)
        var events: [EventListeners.Event] = []
        var bounds: [(after: Date?, by: Date?)] = []
        var pending: [[FieldValue]] = []
        for row in try Row.fetchAll(db, sql: sql, arguments: arguments) {
            let proto = TransportProtocol(rawValue: row["protocol"]) ?? .tcp
            let port = UInt16(row["port"] as Int)
            let event: String = row["event"]
            let after: String? = row["happened_after"]
            let by: String? = row["happened_by"]
            let address: String = row["address"]
            let interface: String = row["interface"]
            let hostname: String = row["hostname"]
            let before: String? = row["holders_before"]
            let now: String? = row["holders_after"]
            var values: [FieldValue] = [.text(event), .optional(Timestamp.parseISO(after)), .optional(Timestamp.parseISO(by))]
            values += [.text(proto.rawValue), .text(address), .integer(port), .text(interface)]
            values += [holders(before), holders(now)]
            values += [.optional(ServiceRegistry.name(port: port, proto: proto)), .text(hostname)]
            pending.append(values)
            events.append(.init(snapshot: row["snapshot_id"], key: ListenerKey(proto: proto, address: address, port: port, interface: interface),
                                event: event, holdersBefore: before, holdersAfter: now))
            bounds.append((Timestamp.parseISO(after), Timestamp.parseISO(by)))
        }
        try markNamespacesAndGaps(pending, events: events, bounds: bounds, filter: namespaceFilter, into: &table)
        return table
    }

    /// Each event's namespace (and --netns), and whether a gap lies between its bounds: an
    /// event across a gap happened at some unknown time in it, not at either snapshot.
    private func markNamespacesAndGaps(_ rows: [[FieldValue]], events: [EventListeners.Event], bounds: [(after: Date?, by: Date?)],
                                       filter: NamespaceFilter, into table: inout RecordTable) throws {
        let resolved = try EventListeners(db: db).resolve(events)
        var coverage: [Int64: HostCoverage] = [:]
        for (index, values) in rows.enumerated() {
            let namespace = resolved[index].namespace
            if let namespace, !filter.admits(namespace) { continue }
            if namespace == nil, filter.selection != .all { continue }
            var acrossGap = false
            if let host = resolved[index].hostID, let after = bounds[index].after, let by = bounds[index].by {
                if coverage[host] == nil { coverage[host] = try CoverageQuery(db: db).host(host) }
                acrossGap = !(coverage[host]?.gaps(within: after, by).isEmpty ?? true)
            }
            table.append(values + (namespace?.fields ?? [.null, .null, .null]) + [.bool(acrossGap)])
        }
    }

    private func holders(_ text: String?) -> FieldValue {
        guard let text else { return .null }
        return .list(text.components(separatedBy: ", "))
    }
}
