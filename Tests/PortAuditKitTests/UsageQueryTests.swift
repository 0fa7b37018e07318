import Foundation
import GRDB
import Testing
@testable import PortAuditKit

/// `usage` on a small history written by hand into a real store, every figure worked out
/// beforehand: per hour and per listener, with values that change inside an interval, a
/// usage row older than the interval, and a listener that closes.
@Suite struct UsageQueryTests {
    /// Six snapshots 20 minutes apart from 10:00 UTC. A (tcp *:80, open throughout) has
    /// 4 connections and 1 waiting from s2, 3 and 0 from s5. B (tcp 127.0.0.1:81) listens at
    /// s2 and s3 only, with 6 and 2 from s3.
    ///
    ///     snapshot      s1  s2  s3  s4  s5  s6
    ///     connections    0   4  10   4   3   3
    ///     accept queue   0   1   3   1   0   0
    static let start = Timestamp.date(milliseconds: 1_767_607_200_000)  // 2026-01-05T10:00:00Z

    func store() throws -> (Store, TemporaryDirectory) {
        let directory = try TemporaryDirectory()
        let path = directory.file("usage.db")
        _ = try Store(path: path, access: .readWrite)
        try DatabaseQueue(path: path).write { db in
            try db.execute(sql: "INSERT INTO host (id, machine_id, hostname) VALUES (1, 'm', 'h')")
            try db.execute(sql: "INSERT INTO netns (id, host_id, inode) VALUES (1, 1, 4026531840)")
            for n in 1...6 {
                try db.execute(sql: """
                    INSERT INTO snapshot (id, host_id, netns_id, started_at, duration_ms, as_root, source, listeners,
                                          sockets, unattributed, opened, closed, changed)
                    VALUES (?, 1, 1, ?, 1, 1, 'netlink', 0, 0, 0, 0, 0, 0)
                    """, arguments: [n, Timestamp.milliseconds(Self.start) + Int64(n - 1) * 1_200_000])
            }
            try db.execute(sql: """
                INSERT INTO listener (id, netns_id, protocol, address, port) VALUES (1, 1, 'tcp', '0.0.0.0', 80), (2, 1, 'tcp', '127.0.0.1', 81);
                INSERT INTO listener_interval (id, listener_id, first_snapshot_id, last_snapshot_id, ended_snapshot_id, socket_count, state_hash)
                VALUES (1, 1, 1, NULL, NULL, 1, 0), (2, 2, 2, 3, 4, 1, 0);
                INSERT INTO process (id, host_id, boot_id, pid, start_ticks, started_at, name)
                VALUES (1, 1, 'b', 100, 1, 0, 'a'), (2, 1, 'b', 200, 1, 0, 'b');
                INSERT INTO holding (interval_id, inode, socket_uid, process_id, fd) VALUES (1, 11, 0, 1, 3), (2, 22, 0, 2, 3);
                INSERT INTO listener_usage (listener_id, snapshot_id, connections, accept_queue)
                VALUES (1, 2, 4, 1), (1, 5, 3, 0), (2, 3, 6, 2);
                """)
        }
        return (try Store(path: path, access: .readOnly), directory)
    }

    @Test func perHourFiguresFollowEverySnapshot() throws {
        let (store, directory) = try store()
        defer { directory.remove() }
        let table = try store.usage(since: Self.start, until: Self.start.addingTimeInterval(7199), by: .hour,
                                    timeZone: TimeZone(identifier: "UTC")!)
        #expect(table.rows.count == 2)
        let expected: [[String: FieldValue]] = [
            ["snapshots": .int(3), "listeners": .int(2), "opened": .int(2), "closed": .int(0), "processes": .int(2),
             "connections_max": .int(10), "connections_avg": .double(14.0 / 3), "accept_queue_max": .int(3)],
            ["snapshots": .int(3), "listeners": .int(1), "opened": .int(0), "closed": .int(1), "processes": .int(1),
             "connections_max": .int(4), "connections_avg": .double(10.0 / 3), "accept_queue_max": .int(1)],
        ]
        for (row, figures) in expected.enumerated() {
            for (field, value) in figures {
                #expect(table.value(row, field) == value, "hour \(row): \(field)")
            }
        }
    }

    /// Without --since, a store a few minutes old is not shown as 30 empty days.
    @Test func defaultWindowStartsNoEarlierThanTheStore() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let db = directory.file("new.db")
        try #require(try portaudit("snapshot", "--db", db, "--quiet").status == 0)
        let result = try portaudit("usage", "--db", db, "--format", "json", "--utc")
        try #require(result.status == 0, "\(result.stderr)")
        let periods = try #require(try parseJSON(result.stdout) as? [[String: Any]])
        #expect(periods.count == 1 || periods.count == 2, "today, and yesterday only when run across midnight: \(periods.count)")
        #expect(periods.last?["snapshots"] as? Int == 1 || periods.first?["snapshots"] as? Int == 1)
    }

    @Test func perListenerFiguresCountOnlyTheSnapshotsThatSawIt() throws {
        let (store, directory) = try store()
        defer { directory.remove() }
        let table = try store.usageByListener(since: Self.start, until: Self.start.addingTimeInterval(7199))
        #expect(table.rows.count == 2)
        // B first: more connections at its busiest.
        let expected: [[String: FieldValue]] = [
            ["port": .int(81), "snapshots": .int(2), "connections_max": .int(6), "connections_avg": .double(3), "accept_queue_max": .int(2)],
            ["port": .int(80), "snapshots": .int(6), "connections_max": .int(4), "connections_avg": .double(3), "accept_queue_max": .int(1)],
        ]
        for (row, figures) in expected.enumerated() {
            for (field, value) in figures {
                #expect(table.value(row, field) == value, "row \(row): \(field)")
            }
        }
        // A window that starts at s4 sees B no more, and A only from there on.
        let late = try store.usageByListener(since: Self.start.addingTimeInterval(3600), until: Self.start.addingTimeInterval(7199))
        #expect(late.rows.count == 1)
        #expect(late.value(0, "snapshots") == .int(3))
        #expect(late.value(0, "connections_avg") == .double(10.0 / 3))
    }
}
