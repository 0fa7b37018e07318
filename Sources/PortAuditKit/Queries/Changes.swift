import Foundation
import GRDB

extension Store {
    /// Opened, closed and changed listeners whose time bounds meet `window`, in order.
    public func changes(in window: TimeWindow, ports: PortSpec? = nil) throws -> RecordTable {
        try read { db in try ChangesQuery(db: db).run(window: window, ports: ports) }
    }
}

struct ChangesQuery {
    let db: Database

    static let fields = ["event", "happened_after", "happened_by", FieldName.proto, FieldName.address, FieldName.port,
                         FieldName.interface, "holders_before", "holders_after", FieldName.service, FieldName.hostname]

    /// An event is in the window when it may have happened there: the snapshot that saw it
    /// is not before `since`, and the one before it is before `until`.
    func run(window: TimeWindow, ports: PortSpec?) throws -> RecordTable {
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
                   holders_before, holders_after, hostname
            FROM port_events
            \(conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND "))
            ORDER BY happened_by, snapshot_id, port, protocol, address, interface,
                     CASE event WHEN 'closed' THEN 0 ELSE 1 END
            """
        var table = RecordTable(fields: Self.fields)
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
            table.append(values)
        }
        return table
    }

    private func holders(_ text: String?) -> FieldValue {
        guard let text else { return .null }
        return .list(text.components(separatedBy: ", "))
    }
}
