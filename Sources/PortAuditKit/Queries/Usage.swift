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
    /// The oldest snapshot of the store (one index seek per host); nil without any.
    public func earliestSnapshot() throws -> Date? {
        try read { db in
            try Int64.fetchOne(db, sql: "SELECT min((SELECT min(s.started_at) FROM snapshot s WHERE s.host_id = h.id)) FROM host h")
                .map(Timestamp.date(milliseconds:))
        }
    }

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

    private struct Tally {
        var row: Row
        var snapshots = 0, connectionsMax = 0, connectionsSum = 0, queueMax = 0
    }

    /// Each snapshot of the window that saw a TCP listener of its own namespace counts, with
    /// the listener's latest usage row at or before it (none: 0 and 0). The intervals and usage
    /// rows are ranges over each namespace's snapshots, so the cost follows the listeners and
    /// their changes, not listeners times snapshots.
    func run(since: Date, until: Date, ports: PortSpec?) throws -> RecordTable {
        // Decoded row by row from a cursor: Row.fetchAll first copies every row (a month of
        // one-minute snapshots is 43,200) into a Row of its own, which took half of this read.
        let snapshots = try Array(Row.fetchCursor(db, sql: """
            SELECT s.id, s.netns_id FROM host h CROSS JOIN snapshot s ON s.host_id = h.id AND s.started_at BETWEEN ? AND ? ORDER BY s.id
            """, arguments: [Timestamp.milliseconds(since), Timestamp.milliseconds(until)]).map { (id: $0[0] as Int64, netns: $0[1] as Int64) })
        guard let minID = snapshots.first?.id, let maxID = snapshots.last?.id else {
            return RecordTable(fields: Self.fields)
        }
        var series: [Int64: SnapshotSeries] = [:]
        for (index, snapshot) in snapshots.enumerated() {
            let own = series[snapshot.netns] ?? SnapshotSeries()
            series[snapshot.netns] = own
            own.append(id: snapshot.id, index: index, bucket: 0)
        }

        let (condition, portArguments) = portFilter(ports, columnsOf: "l.")
        let intervals = try Row.fetchAll(db, sql: """
            SELECT i.listener_id, i.first_snapshot_id, i.last_snapshot_id, l.netns_id, l.address, l.port, l.interface, h.hostname
            FROM listener_interval i JOIN listener l ON l.id = i.listener_id JOIN netns n ON n.id = l.netns_id JOIN host h ON h.id = n.host_id
            WHERE l.protocol = 'tcp' AND i.first_snapshot_id <= ? AND (i.last_snapshot_id IS NULL OR i.last_snapshot_id >= ?)\(condition)
            """, arguments: [maxID, minID] + portArguments)
        let usage = try UsageSpans.load(db, listeners: intervals.map { $0[0] as Int64 }, through: maxID)

        var tallies: [Int64: Tally] = [:]
        for interval in intervals {
            let listener: Int64 = interval[0]
            guard let own = series[interval[3] as Int64] else { continue }
            let held = own.positions(from: interval[1], through: interval[2])
            guard !held.isEmpty else { continue }
            var tally = tallies[listener] ?? Tally(row: interval)
            tally.snapshots += held.count
            for (value, overlap) in usage.spans(of: listener, in: own, over: held) {
                tally.connectionsMax = max(tally.connectionsMax, value.connections)
                tally.connectionsSum += value.connections * overlap.count
                tally.queueMax = max(tally.queueMax, value.queue)
            }
            tallies[listener] = tally
        }

        let ordered = tallies.sorted { a, b in
            let x = a.value, y = b.value
            if x.connectionsMax != y.connectionsMax { return x.connectionsMax > y.connectionsMax }
            if x.queueMax != y.queueMax { return x.queueMax > y.queueMax }
            let (xPort, yPort) = (x.row["port"] as Int, y.row["port"] as Int)
            if xPort != yPort { return xPort < yPort }
            let (xAddress, yAddress) = (x.row["address"] as String, y.row["address"] as String)
            return xAddress != yAddress ? xAddress < yAddress : a.key < b.key
        }
        var table = RecordTable(fields: Self.fields)
        for (_, tally) in ordered {
            let port = UInt16(tally.row["port"] as Int)
            let address: String = tally.row["address"], interface: String = tally.row["interface"]
            var values: [FieldValue] = [.text("tcp"), .text(address), .integer(port), .text(interface)]
            values += [.integer(tally.snapshots), .integer(tally.connectionsMax)]
            values += [.double(Double(tally.connectionsSum) / Double(tally.snapshots)), .integer(tally.queueMax)]
            values += [.optional(ServiceRegistry.name(port: port, proto: .tcp)), .text(tally.row["hostname"] as String)]
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
        // A cursor, as in ListenerUsageQuery.
        let snapshots = try Array(Row.fetchCursor(db, sql: """
            SELECT s.id, s.host_id, s.started_at FROM host h CROSS JOIN snapshot s ON s.host_id = h.id AND s.started_at BETWEEN ? AND ?
            ORDER BY s.id
            """, arguments: [sinceMs, untilMs]).map { (id: $0[0] as Int64, host: $0[1] as Int64, at: $0[2] as Int64) })

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
            let after = firstIndex(in: starts) { $0 > date }
            return after > 0 ? after - 1 : nil
        }

        // Each host's snapshots of the window in id order, with the runs of them that fall in
        // one period: an interval is then a range of positions, not a walk over its snapshots.
        var series: [Int64: SnapshotSeries] = [:]
        for (index, snapshot) in snapshots.enumerated() {
            guard let b = bucket(snapshot.at) else { continue }
            buckets[b].snapshots += 1
            let host = series[snapshot.host] ?? SnapshotSeries()
            series[snapshot.host] = host
            host.append(id: snapshot.id, index: index, bucket: b)
        }

        let (portCondition, arguments) = portFilter(ports, columnsOf: "l.")
        if let minID = snapshots.first?.id, let maxID = snapshots.last?.id {
            let intervals = try Row.fetchAll(db, sql: """
                SELECT i.id, i.listener_id, i.first_snapshot_id, i.last_snapshot_id, n.host_id
                FROM listener_interval i JOIN listener l ON l.id = i.listener_id JOIN netns n ON n.id = l.netns_id
                WHERE i.first_snapshot_id <= ? AND (i.last_snapshot_id IS NULL OR i.last_snapshot_id >= ?)\(portCondition)
                """, arguments: [maxID, minID] + arguments)
            var holders: [Int64: [Int64]] = [:]
            let usage = try UsageSpans.load(db, listeners: intervals.map { $0[1] as Int64 }, through: maxID)
            if !intervals.isEmpty {
                let ids = String(describing: intervals.map { $0[0] as Int64 })
                for row in try Row.fetchAll(db, sql: """
                    SELECT DISTINCT interval_id, process_id FROM holding
                    WHERE process_id IS NOT NULL AND interval_id IN (SELECT value FROM json_each(?))
                    """, arguments: [ids]) {
                    holders[row[0], default: []].append(row[1])
                }
            }
            for interval in intervals {
                let listener: Int64 = interval[1]
                guard let host = series[interval[4]] else { continue }
                let held = host.positions(from: interval[2], through: interval[3])
                guard !held.isEmpty else { continue }
                for b in host.buckets(over: held) {
                    buckets[b].listeners.insert(listener)
                    buckets[b].processes.formUnion(holders[interval[0] as Int64] ?? [])
                }
                for (value, overlap) in usage.spans(of: listener, in: host, over: held) {
                    host.add(value.connections, value.queue, over: overlap)
                }
            }
        }
        var connections = Array(repeating: 0, count: snapshots.count)
        var queues = Array(repeating: 0, count: snapshots.count)
        for host in series.values { host.totals(into: &connections, &queues) }
        for host in series.values {
            for (index, b) in zip(host.indices, host.bucketOf) {
                buckets[b].connectionsMax = max(buckets[b].connectionsMax, connections[index])
                buckets[b].connectionsSum += connections[index]
                buckets[b].queueMax = max(buckets[b].queueMax, queues[index])
            }
        }
        // The events `changes` lists (not the port_events view, which computes every event of
        // the store before it can compare their times), each in the period of the snapshot that saw it.
        for (event, at) in try ChangesQuery(db: db).kinds(window: TimeWindow(since: since, until: until), ports: ports) {
            guard at <= untilMs, let b = bucket(at) else { continue }
            switch event {
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

/// The snapshots of a usage window of one host (or one namespace) in id order, and the
/// connections and accept queues summed over them: each listener's value is added to a range
/// of positions at once.
private final class SnapshotSeries {
    private(set) var ids: [Int64] = []
    /// Each snapshot's place in the window's list of every host's snapshots, and its period.
    private(set) var indices: [Int] = []
    private(set) var bucketOf: [Int] = []
    /// Where each run of snapshots of one period starts. Periods follow time and ids follow
    /// insertion: a clock set back makes more runs, never wrong ones.
    private var runs: [(start: Int, bucket: Int)] = []
    /// Difference arrays, one longer than `ids`, turned into totals by `totals`.
    private var connectionChanges: [Int] = []
    private var queueChanges: [Int] = []

    func append(id: Int64, index: Int, bucket: Int) {
        if runs.last?.bucket != bucket { runs.append((ids.count, bucket)) }
        ids.append(id)
        indices.append(index)
        bucketOf.append(bucket)
    }

    /// The positions of the snapshots whose ids are in first...last (nil or Int64.max: to the end).
    func positions(from first: Int64, through last: Int64?) -> Range<Int> {
        let low = firstIndex(in: ids) { $0 >= first }
        let high = last.map { last in last == .max ? ids.count : firstIndex(in: ids) { $0 > last } } ?? ids.count
        return low..<max(low, high)
    }

    /// The periods the snapshots at `range` fall in.
    func buckets(over range: Range<Int>) -> [Int] {
        var run = max(0, firstIndex(in: runs) { $0.start > range.lowerBound } - 1)
        var result: [Int] = []
        while run < runs.count && runs[run].start < range.upperBound {
            result.append(runs[run].bucket)
            run += 1
        }
        return result
    }

    func add(_ connections: Int, _ queue: Int, over range: Range<Int>) {
        guard !range.isEmpty else { return }
        if connectionChanges.isEmpty {
            connectionChanges = Array(repeating: 0, count: ids.count + 1)
            queueChanges = connectionChanges
        }
        connectionChanges[range.lowerBound] += connections
        connectionChanges[range.upperBound] -= connections
        queueChanges[range.lowerBound] += queue
        queueChanges[range.upperBound] -= queue
    }

    /// Writes each snapshot's summed values at its place in the window's list.
    func totals(into connections: inout [Int], _ queues: inout [Int]) {
        guard !connectionChanges.isEmpty else { return }
        var connectionTotal = 0, queueTotal = 0
        for position in ids.indices {
            connectionTotal += connectionChanges[position]
            queueTotal += queueChanges[position]
            connections[indices[position]] = connectionTotal
            queues[indices[position]] = queueTotal
        }
    }
}

/// Each listener's usage rows (stored only when a value changes): a row's values hold from its
/// snapshot to the next row's.
private struct UsageSpans {
    struct Value { var snapshot: Int64, connections: Int, queue: Int }
    var rows: [Int64: [Value]] = [:]

    static func load(_ db: Database, listeners: [Int64], through maxID: Int64) throws -> UsageSpans {
        var spans = UsageSpans()
        guard !listeners.isEmpty else { return spans }
        for row in try Row.fetchAll(db, sql: """
            SELECT listener_id, snapshot_id, connections, accept_queue FROM listener_usage
            WHERE listener_id IN (SELECT value FROM json_each(?)) AND snapshot_id <= ?
            ORDER BY listener_id, snapshot_id
            """, arguments: [String(describing: Array(Set(listeners))), maxID]) {
            spans.rows[row[0], default: []].append(Value(snapshot: row[1], connections: row[2], queue: row[3]))
        }
        return spans
    }

    /// The listener's values over the positions `held` of `series`, each with the positions it holds for.
    func spans(of listener: Int64, in series: SnapshotSeries, over held: Range<Int>) -> [(Value, Range<Int>)] {
        let values = rows[listener] ?? []
        return values.indices.compactMap { k in
            let next = k + 1 < values.count ? values[k + 1].snapshot - 1 : Int64.max
            let overlap = series.positions(from: values[k].snapshot, through: next).clamped(to: held)
            return overlap.isEmpty ? nil : (values[k], overlap)
        }
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
