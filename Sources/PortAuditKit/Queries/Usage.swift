import Foundation
import GRDB

public enum UsagePeriod: String, Sendable, CaseIterable {
    case hour, day, week

    /// How far back `usage` looks when no --since is given.
    public var defaultSpan: TimeInterval {
        switch self {
        case .hour: 86400
        case .day: 30 * 86400
        case .week: 12 * 7 * 86400
        }
    }
}

extension Store {
    /// Per period: snapshots, listeners, opened, closed, distinct holder processes, and how
    /// many connections the listeners had (at the period's snapshots).
    public func usage(since: Date, until: Date = Date(), by period: UsagePeriod, ports: PortSpec? = nil,
                      timeZone: TimeZone = .current) throws -> RecordTable {
        try read { db in
            try UsageQuery(db: db, period: period, timeZone: timeZone).run(since: since, until: until, ports: ports)
        }
    }
}

extension Store {
    /// Per TCP listener seen in the window: at how many snapshots, and how busy it was there.
    public func usageByListener(since: Date, until: Date = Date(), ports: PortSpec? = nil) throws -> RecordTable {
        try read { db in try ListenerUsageQuery(db: db).run(since: since, until: until, ports: ports) }
    }
}

/// " AND port BETWEEN ? AND ? [AND protocol = ?]" on the columns of `prefix` ("l." or ""), with
/// its arguments; nothing without `ports`.
private func portFilter(_ ports: PortSpec?, columnsOf prefix: String) -> (sql: String, arguments: StatementArguments) {
    guard let ports else { return ("", []) }
    var sql = " AND \(prefix)port BETWEEN ? AND ?"
    var arguments: StatementArguments = [Int(ports.port), Int(ports.lastPort)]
    if let proto = ports.proto {
        sql += " AND \(prefix)protocol = ?"
        arguments += [proto.rawValue]
    }
    return (sql, arguments)
}

struct ListenerUsageQuery {
    let db: Database

    static let fields = [FieldName.proto, FieldName.address, FieldName.port, FieldName.interface, "snapshots",
                         "connections_max", "connections_avg", "accept_queue_max", FieldName.service, FieldName.hostname]

    func run(since: Date, until: Date, ports: PortSpec?) throws -> RecordTable {
        let (condition, portArguments) = portFilter(ports, columnsOf: "l.")
        let arguments: StatementArguments = [Timestamp.milliseconds(since), Timestamp.milliseconds(until)] + portArguments
        // Each snapshot of the window that saw a TCP listener, with the listener's latest
        // usage row at or before it (none: 0 and 0).
        let rows = try Row.fetchAll(db, sql: """
            SELECT l.id, l.protocol, l.address, l.port, l.interface, h.hostname,
                   count(*) AS snapshots,
                   max(coalesce(u.connections, 0)) AS connections_max,
                   avg(coalesce(u.connections, 0)) AS connections_avg,
                   max(coalesce(u.accept_queue, 0)) AS accept_queue_max
            FROM snapshot s
            JOIN listener_interval i ON i.first_snapshot_id <= s.id AND (i.last_snapshot_id IS NULL OR i.last_snapshot_id >= s.id)
            JOIN listener l ON l.id = i.listener_id AND l.netns_id = s.netns_id AND l.protocol = 'tcp'
            JOIN host h ON h.id = s.host_id
            LEFT JOIN listener_usage u ON u.listener_id = l.id
                 AND u.snapshot_id = (SELECT max(snapshot_id) FROM listener_usage v WHERE v.listener_id = l.id AND v.snapshot_id <= s.id)
            WHERE s.started_at BETWEEN ? AND ?\(condition)
            GROUP BY l.id
            ORDER BY connections_max DESC, accept_queue_max DESC, l.port, l.address
            """, arguments: arguments)
        var table = RecordTable(fields: Self.fields)
        for row in rows {
            let port = UInt16(row["port"] as Int)
            let address: String = row["address"], interface: String = row["interface"], hostname: String = row["hostname"]
            var values: [FieldValue] = [.text("tcp"), .text(address), .integer(port), .text(interface)]
            values += [.int(row["snapshots"] as Int64), .int(row["connections_max"] as Int64)]
            values += [.double(row["connections_avg"] as Double), .int(row["accept_queue_max"] as Int64)]
            values += [.optional(ServiceRegistry.name(port: port, proto: .tcp)), .text(hostname)]
            table.append(values)
        }
        return table
    }
}

struct UsageQuery {
    let db: Database
    let period: UsagePeriod
    let timeZone: TimeZone

    /// More rows than anyone reads, and a bound on the work a mistyped --since can cause.
    static let maximumPeriods = 20_000

    public struct TooManyPeriods: Error, CustomStringConvertible {
        public var description: String
    }

    static let fields = ["period_start", "period_end", "snapshots", "listeners", "opened", "closed", "changed",
                         "processes", "connections_max", "connections_avg", "accept_queue_max"]

    private struct Bucket {
        var snapshots = 0
        var listeners = Set<Int64>()
        var processes = Set<Int64>()
        var opened = 0, closed = 0, changed = 0
        var connectionsMax = 0, connectionsSum = 0, queueMax = 0
    }

    private var calendar: Calendar {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        calendar.firstWeekday = 2  // ISO weeks start on Monday
        return calendar
    }

    func periodStart(_ date: Date) -> Date {
        switch period {
        case .hour: calendar.dateInterval(of: .hour, for: date)!.start
        case .day: calendar.startOfDay(for: date)
        case .week: calendar.dateInterval(of: .weekOfYear, for: date)!.start
        }
    }

    func next(_ start: Date) -> Date {
        switch period {
        case .hour: calendar.date(byAdding: .hour, value: 1, to: start)!
        case .day: calendar.date(byAdding: .day, value: 1, to: start)!
        case .week: calendar.date(byAdding: .day, value: 7, to: start)!
        }
    }

    func run(since: Date, until: Date, ports: PortSpec?) throws -> RecordTable {
        let sinceMs = Timestamp.milliseconds(since), untilMs = Timestamp.milliseconds(until)
        let snapshots = try Row.fetchAll(db, sql: """
            SELECT id, host_id, started_at FROM snapshot WHERE started_at BETWEEN ? AND ? ORDER BY id
            """, arguments: [sinceMs, untilMs]).map { (id: $0[0] as Int64, host: $0[1] as Int64, at: $0[2] as Int64) }

        var starts: [Date] = []
        var cursor = periodStart(since)
        while cursor <= until {
            guard starts.count < Self.maximumPeriods else {
                throw UsageQuery.TooManyPeriods(description: "that window holds more than \(Self.maximumPeriods) \(period.rawValue)s; give a later --since or a longer --by")
            }
            starts.append(cursor)
            cursor = next(cursor)
        }
        var buckets = Array(repeating: Bucket(), count: starts.count)
        func bucket(_ ms: Int64) -> Int? {
            let date = Timestamp.date(milliseconds: ms)
            var low = 0, high = starts.count - 1, found: Int?
            while low <= high {
                let mid = (low + high) / 2
                if starts[mid] <= date { found = mid; low = mid + 1 } else { high = mid - 1 }
            }
            return found
        }

        var snapshotBucket: [Int64: Int] = [:]
        var perHost: [Int64: [(id: Int64, index: Int)]] = [:]
        var connections = Array(repeating: 0, count: snapshots.count)
        var queues = Array(repeating: 0, count: snapshots.count)
        for (index, snapshot) in snapshots.enumerated() {
            guard let b = bucket(snapshot.at) else { continue }
            snapshotBucket[snapshot.id] = b
            buckets[b].snapshots += 1
            perHost[snapshot.host, default: []].append((snapshot.id, index))
        }

        let (portCondition, arguments) = portFilter(ports, columnsOf: "l.")
        if let minID = snapshots.first?.id, let maxID = snapshots.last?.id {
            let intervals = try Row.fetchAll(db, sql: """
                SELECT i.id, i.listener_id, i.first_snapshot_id, i.last_snapshot_id, n.host_id
                FROM listener_interval i JOIN listener l ON l.id = i.listener_id JOIN netns n ON n.id = l.netns_id
                WHERE i.first_snapshot_id <= ? AND (i.last_snapshot_id IS NULL OR i.last_snapshot_id >= ?)\(portCondition)
                """, arguments: [maxID, minID] + arguments)
            var holders: [Int64: [Int64]] = [:]
            var usage: [Int64: [(snapshot: Int64, connections: Int, queue: Int)]] = [:]
            if !intervals.isEmpty {
                let ids = String(describing: intervals.map { $0[0] as Int64 })
                for row in try Row.fetchAll(db, sql: """
                    SELECT DISTINCT interval_id, process_id FROM holding
                    WHERE process_id IS NOT NULL AND interval_id IN (SELECT value FROM json_each(?))
                    """, arguments: [ids]) {
                    holders[row[0], default: []].append(row[1])
                }
                let listenerIDs = String(describing: Array(Set(intervals.map { $0[1] as Int64 })))
                for row in try Row.fetchAll(db, sql: """
                    SELECT listener_id, snapshot_id, connections, accept_queue FROM listener_usage
                    WHERE listener_id IN (SELECT value FROM json_each(?)) AND snapshot_id <= ?
                    ORDER BY listener_id, snapshot_id
                    """, arguments: [listenerIDs, maxID]) {
                    usage[row[0], default: []].append((row[1], row[2], row[3]))
                }
            }
            for interval in intervals {
                let first: Int64 = interval[2], last: Int64? = interval[3]
                let listener: Int64 = interval[1]
                let values = usage[listener] ?? []
                var position = -1
                for snapshot in perHost[interval[4] as Int64] ?? [] where snapshot.id >= first && snapshot.id <= (last ?? .max) {
                    guard let b = snapshotBucket[snapshot.id] else { continue }
                    buckets[b].listeners.insert(listener)
                    buckets[b].processes.formUnion(holders[interval[0] as Int64] ?? [])
                    // The listener's latest usage row at or before this snapshot.
                    while position + 1 < values.count && values[position + 1].snapshot <= snapshot.id { position += 1 }
                    if position >= 0 {
                        connections[snapshot.index] += values[position].connections
                        queues[snapshot.index] += values[position].queue
                    }
                }
            }
        }
        for (index, snapshot) in snapshots.enumerated() {
            guard let b = snapshotBucket[snapshot.id] else { continue }
            buckets[b].connectionsMax = max(buckets[b].connectionsMax, connections[index])
            buckets[b].connectionsSum += connections[index]
            buckets[b].queueMax = max(buckets[b].queueMax, queues[index])
        }

        let (eventPortCondition, eventPortArguments) = portFilter(ports, columnsOf: "")
        let eventConditions = "happened_by >= ? AND happened_by <= ?" + eventPortCondition
        let eventArguments: StatementArguments = [Timestamp.iso(since), Timestamp.iso(until)] + eventPortArguments
        for row in try Row.fetchAll(db, sql: "SELECT event, snapshot_id FROM port_events WHERE \(eventConditions)",
                                    arguments: eventArguments) {
            guard let b = snapshotBucket[row[1] as Int64] else { continue }
            switch row[0] as String {
            case "opened": buckets[b].opened += 1
            case "closed": buckets[b].closed += 1
            default: buckets[b].changed += 1
            }
        }

        var table = RecordTable(fields: Self.fields)
        for (index, start) in starts.enumerated() {
            let b = buckets[index]
            let seen = b.snapshots > 0
            var values: [FieldValue] = [.time(start), .time(next(start)), .integer(b.snapshots)]
            values.append(seen ? .integer(b.listeners.count) : .null)
            values += [.integer(b.opened), .integer(b.closed), .integer(b.changed)]
            values.append(seen ? .integer(b.processes.count) : .null)
            values.append(seen ? .integer(b.connectionsMax) : .null)
            values.append(seen ? .double(Double(b.connectionsSum) / Double(b.snapshots)) : .null)
            values.append(seen ? .integer(b.queueMax) : .null)
            table.append(values)
        }
        return table
    }
}

/// The usage series as terminal charts: one sparkline per measure.
public enum UsageChart {
    static let levels: [Character] = ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"]

    /// "▁▃█ ▂" for the values; a period with no snapshot is a space.
    public static func sparkline(_ values: [Double?]) -> String {
        let top = values.compactMap { $0 }.max() ?? 0
        return String(values.map { value -> Character in
            guard let value else { return " " }
            guard top > 0 else { return levels[0] }
            return levels[min(levels.count - 1, Int((value / top) * Double(levels.count - 1) + 0.5))]
        })
    }

    /// The largest number in `field`, the top of a chart of it.
    public static func top(_ table: RecordTable, _ field: String) -> Double {
        table.rows.indices.compactMap { row -> Double? in
            switch table.value(row, field) {
            case .int(let v): Double(v)
            case .double(let v): v
            default: nil
            }
        }.max() ?? 0
    }

    /// A horizontal bar of `value` out of `top`, `width` cells at most.
    public static func bar(_ value: Double, top: Double, width: Int) -> String {
        guard top > 0, value > 0 else { return "" }
        return String(repeating: "█", count: max(1, Int((value / top * Double(width)).rounded())))
    }

    /// Sparklines of listeners and connections under the table, cut to `width` periods
    /// (the latest ones) so that they fit.
    public static func render(_ table: RecordTable, width: Int?) -> String {
        func series(_ field: String) -> [Double?] {
            table.rows.indices.map { row -> Double? in
                switch table.value(row, field) {
                case .int(let v): Double(v)
                case .double(let v): v
                default: nil
                }
            }
        }
        var lines: [String] = []
        for (label, field) in [("listeners  ", "listeners"), ("connections", "connections_max"), ("queue      ", "accept_queue_max")] {
            var values = series(field)
            if let width, values.count > width - label.count - 12 { values = Array(values.suffix(max(1, width - label.count - 12))) }
            let top = values.compactMap { $0 }.max() ?? 0
            lines.append("\(label) \(sparkline(values)) max \(FieldValue.format(top))")
        }
        return lines.joined(separator: "\n")
    }
}
