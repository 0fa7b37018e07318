import Foundation
import GRDB
import Testing
@testable import PortAuditKit

/// `ports` lists the same listener of two hosts that share a name (a machine-id changed) in
/// one order, the hosts', whatever order a process's hashing gives them.
@Suite struct PortsOrderTests {
    @Test func hostsSharingANameAreListedInHostOrder() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("s.db")
        _ = try Store(path: path, access: .readWrite)
        let base: Int64 = 1_700_000_000_000
        try DatabaseQueue(path: path).write { db in
            // Host 2 first: row order is not what decides.
            for host: Int64 in [2, 1] {
                try db.execute(sql: """
                    INSERT INTO host (id, machine_id, hostname) VALUES (?, ?, 'h');
                    INSERT INTO netns (id, host_id, inode) VALUES (?, ?, 4026531840);
                    INSERT INTO snapshot (id, host_id, netns_id, started_at, duration_ms, as_root, source, listeners, sockets,
                                          unattributed, opened, closed, changed)
                    VALUES (?, ?, ?, ?, 1, 1, 'netlink', 1, 1, 0, 1, 0, 0);
                    INSERT INTO listener (id, netns_id, protocol, address, port, interface) VALUES (?, ?, 'tcp', '0.0.0.0', 22, '');
                    INSERT INTO listener_interval (listener_id, first_snapshot_id, socket_count, state_hash) VALUES (?, ?, 1, 0);
                    """, arguments: [host, "machine-\(host)", host, host, host, host, host, base + host * 60_000, host, host, host, host])
            }
        }
        let table = try Store(path: path, access: .readOnly).ports(PortsFilter(scope: .listeningNow))
        let firstSeen = try #require(table.fields.firstIndex(of: FieldName.firstSeen))
        #expect(table.rows.map { $0[firstSeen] } == [1, 2].map { .time(Timestamp.date(milliseconds: base + $0 * 60_000)) })
    }
}
