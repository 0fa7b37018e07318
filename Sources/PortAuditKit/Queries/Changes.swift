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

    /// The events the `port_events` view lists, computed from the snapshots of the window
    /// outward instead of from every interval of the store: with --since, only the snapshots
    /// from that time on are read (snapshot_by_time), and only the intervals that begin or
    /// end at them (migration 0006), so a year of history costs what the window holds.
    ///
    /// `detail` false gives only each event's kind (`closed`, `opened`, `changed`) and time,
    /// for `usage`, which counts them: the holders of both sides, read per event, are most of
    /// the cost (over 30 days of a year-old store, this step of `usage` took 100-125 ms with
    /// them, 40-60 without).
    static func sql(since: Bool, until: Bool, ports: Bool, proto: Bool, detail: Bool = true) -> String {
        // Snapshots that may have seen an event in the window: not before `since`. CROSS JOIN
        // keeps host outside, so snapshot_by_time is searched by (host_id, started_at) rather
        // than scanned; `+p.host_id` below keeps the snapshot before an event a walk down the
        // rowid instead of a sort of every snapshot of the host.
        let seen = since
            ? "SELECT s.id, s.host_id FROM host h CROSS JOIN snapshot s ON s.host_id = h.id AND s.started_at >= :since"
            : "SELECT s.id, s.host_id FROM snapshot s"
        var listenerConditions: [String] = []
        if ports { listenerConditions.append("l.port BETWEEN :firstPort AND :lastPort") }
        if proto { listenerConditions.append("l.protocol = :proto") }
        var conditions = listenerConditions
        if until { conditions.append("(b.started_at IS NULL OR b.started_at < :until)") }
        func holders(_ interval: String) -> String {
            """
            (SELECT group_concat(holder, ', ') FROM (
                SELECT DISTINCT coalesce(p.name || '[' || p.pid || ']', '?(' || hd.unattributed_reason || ')') AS holder
                FROM holding hd LEFT JOIN process p ON p.id = hd.process_id
                WHERE hd.interval_id = \(interval) ORDER BY 1))
            """
        }
        func holderSet(_ interval: String) -> String {
            """
            (SELECT group_concat(process_id) FROM (
                SELECT DISTINCT hd.process_id FROM holding hd
                WHERE hd.interval_id = \(interval) AND hd.process_id IS NOT NULL ORDER BY 1))
            """
        }
        let changed = detail
            ? "WHEN \(holderSet("e.prev_id")) IS \(holderSet("e.cur_id")) THEN 'sockets_changed' ELSE 'holder_changed'"
            : "ELSE 'changed'"
        let details = !detail ? "" : """
            ,
                   l.protocol, l.address, l.port, l.interface, h.hostname, e.host_id,
                   n.inode AS netns_inode, n.name AS netns_name, n.id = \(HistoryQuery.hostNetns()) AS netns_is_host,
                   CASE WHEN e.prev_id IS NULL THEN NULL ELSE \(holders("e.prev_id")) END AS holders_before,
                   CASE WHEN e.cur_id IS NULL THEN NULL ELSE \(holders("e.cur_id")) END AS holders_after
            """
        return """
            WITH seen AS (\(seen)),
            event AS (
                -- An interval that begins: opened, or the continuation of one that just ended.
                SELECT cur.listener_id, w.host_id, w.id AS snapshot_id, cur.id AS cur_id, prev.id AS prev_id
                FROM seen w
                JOIN listener_interval cur ON cur.first_snapshot_id = w.id
                LEFT JOIN listener_interval prev ON prev.ended_snapshot_id = w.id AND prev.listener_id = cur.listener_id
                UNION ALL
                -- An interval that ends with nothing after it: closed.
                SELECT prev.listener_id, w.host_id, w.id, NULL, prev.id
                FROM seen w
                JOIN listener_interval prev ON prev.ended_snapshot_id = w.id
                WHERE NOT EXISTS (SELECT 1 FROM listener_interval nxt
                                  WHERE nxt.first_snapshot_id = w.id AND nxt.listener_id = prev.listener_id)
            )
            SELECT CASE WHEN e.cur_id IS NULL THEN 'closed'
                        WHEN e.prev_id IS NULL THEN 'opened'
                        \(changed) END AS event,
                   b.started_at AS after_at, s.started_at AS by_at\(details)
            FROM event e
            JOIN snapshot s ON s.id = e.snapshot_id
            JOIN listener l ON l.id = e.listener_id
            JOIN netns n ON n.id = l.netns_id
            JOIN host h ON h.id = e.host_id
            LEFT JOIN snapshot b ON b.id = (SELECT max(p.id) FROM snapshot p WHERE +p.host_id = e.host_id AND p.id < e.snapshot_id)
            \(conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND "))
            ORDER BY s.started_at, e.snapshot_id, l.port, l.protocol, l.address, l.interface,
                     CASE WHEN e.cur_id IS NULL THEN 0 ELSE 1 END
            """
    }

    /// An event is in the window when it may have happened there: the snapshot that saw it
    /// is not before `since`, and the one before it is before `until`.
    /// `netns` keeps the events of the chosen namespaces; an event whose bounds span a gap in
    /// the snapshots is marked `across_gap`: it happened at some unknown time in the gap.
    func run(window: TimeWindow, ports: PortSpec?, netns: NamespaceSelection = .all) throws -> RecordTable {
        let namespaceFilter = try NamespaceFilter(netns, db: db)
        var gaps: [Int64: [CoverageGap]] = [:]
        var table = RecordTable(fields: Self.fields)
        let rows = try events(window: window, ports: ports, detail: true)
        while let row = try rows.next() {
            let proto = TransportProtocol(rawValue: row["protocol"]) ?? .tcp
            let port = UInt16(row["port"] as Int)
            let event: String = row["event"]
            let after: Int64? = row["after_at"]
            let by: Int64 = row["by_at"]
            let address: String = row["address"]
            let interface: String = row["interface"]
            let hostname: String = row["hostname"]
            let before: String? = row["holders_before"]
            let now: String? = row["holders_after"]
            let namespace = RowNamespace(row)
            guard namespaceFilter.admits(namespace) else { continue }
            var acrossGap = false
            if let after {
                let host: Int64 = row["host_id"]
                if gaps[host] == nil { gaps[host] = try CoverageQuery(db: db).gaps(host: host) }
                acrossGap = !(gaps[host]?.within(Timestamp.date(milliseconds: after), Timestamp.date(milliseconds: by)).isEmpty ?? true)
            }
            var values: [FieldValue] = [.text(event), .optional(after.map(Timestamp.date(milliseconds:))),
                                        .time(Timestamp.date(milliseconds: by))]
            values += [.text(proto.rawValue), .text(address), .integer(port), .text(interface)]
            values += [holders(before), holders(now)]
            values += [.optional(ServiceRegistry.name(port: port, proto: proto)), .text(hostname)]
            table.append(values + namespace.fields + [.bool(acrossGap)])
        }
        return table
    }

    /// The kind (`opened`, `closed` or `changed`) and time of each event in the window, as
    /// `run` finds them, for counting.
    func kinds(window: TimeWindow, ports: PortSpec?) throws -> [(event: String, at: Int64)] {
        try Array(events(window: window, ports: ports, detail: false).map { ($0["event"], $0["by_at"]) })
    }

    private func events(window: TimeWindow, ports: PortSpec?, detail: Bool) throws -> RowCursor {
        var arguments: [String: (any DatabaseValueConvertible)?] = [:]
        if let since = window.since { arguments["since"] = Timestamp.milliseconds(since) }
        if let until = window.until { arguments["until"] = Timestamp.milliseconds(until) }
        if let ports {
            arguments["firstPort"] = Int(ports.port)
            arguments["lastPort"] = Int(ports.lastPort)
            if let proto = ports.proto { arguments["proto"] = proto.rawValue }
        }
        let sql = Self.sql(since: window.since != nil, until: window.until != nil, ports: ports != nil,
                           proto: ports?.proto != nil, detail: detail)
        return try Row.fetchCursor(db, sql: sql, arguments: StatementArguments(arguments))
    }

    private func holders(_ text: String?) -> FieldValue {
        guard let text else { return .null }
        return .list(text.components(separatedBy: ", "))
    }
}
