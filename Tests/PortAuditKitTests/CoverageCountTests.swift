import Foundation
import GRDB
import Testing
@testable import PortAuditKit

/// `status` counts each host's snapshots: the whole table's count where the host is alone in
/// the store, its own entries otherwise.
@Suite struct CoverageCountTests {
    func store(snapshotsPerHost: [Int64: Int]) throws -> (TemporaryDirectory, String) {
        let directory = try TemporaryDirectory()
        let path = directory.file("s.db")
        _ = try Store(path: path, access: .readWrite)
        try DatabaseQueue(path: path).write { db in
            var id: Int64 = 0
            for (host, count) in snapshotsPerHost.sorted(by: { $0.key < $1.key }) {
                try db.execute(sql: """
                    INSERT INTO host (id, machine_id, hostname) VALUES (?, ?, 'h');
                    INSERT INTO netns (id, host_id, inode) VALUES (?, ?, 4026531840);
                    """, arguments: [host, "machine-\(host)", host, host])
                for _ in 0..<count {
                    id += 1
                    try db.execute(sql: """
                        INSERT INTO snapshot (id, host_id, netns_id, started_at, duration_ms, as_root, source, listeners, sockets,
                                              unattributed, opened, closed, changed)
                        VALUES (?, ?, ?, ?, 1, 1, 'netlink', 0, 0, 0, 0, 0, 0)
                        """, arguments: [id, host, host, 1_700_000_000_000 + id * 60_000])
                }
            }
        }
        return (directory, path)
    }

    func counts(_ path: String, hosts: [Int64]) throws -> [Int] {
        try DatabaseQueue(path: path).read { db in try hosts.map { try CoverageQuery(db: db).host($0).snapshots } }
    }

    @Test func eachHostCountsItsOwnSnapshots() throws {
        // Host 2 has snapshots of hosts both below and above it.
        let (directory, path) = try store(snapshotsPerHost: [1: 3, 2: 1, 3: 2])
        defer { directory.remove() }
        #expect(try counts(path, hosts: [1, 2, 3]) == [3, 1, 2])
    }

    @Test func aHostAloneCountsTheWholeTable() throws {
        let (directory, path) = try store(snapshotsPerHost: [5: 4])
        defer { directory.remove() }
        #expect(try counts(path, hosts: [5]) == [4])
        // A host in the store with no snapshot of its own yet.
        try DatabaseQueue(path: path).write { db in
            try db.execute(sql: "INSERT INTO host (id, machine_id, hostname) VALUES (6, 'machine-6', 'h')")
        }
        #expect(try counts(path, hosts: [5, 6]) == [4, 0])
    }
}
