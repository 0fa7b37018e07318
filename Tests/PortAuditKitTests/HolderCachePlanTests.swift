import GRDB
import Testing
@testable import PortAuditKit

/// The queries a snapshot runs before collecting, and the writer's look at the previous
/// snapshot, must not grow with the store's history: each reads through an index, or walks
/// the rowid backwards from the newest snapshot.
@Suite struct HolderCachePlanTests {
    private func plan(_ sql: String) throws -> [String] {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        _ = try Store(path: directory.file("store.db"), access: .readWrite)
        return try DatabaseQueue(path: directory.file("store.db")).read { db in
            try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql).map { $0["detail"] as String }
        }
    }

    /// What a snapshot reads of the previous one starts from the open intervals' partial
    /// index, whatever the number of listeners the store has seen.
    @Test(arguments: [HolderCache.knownHoldingsSQL, Store.openIntervalsSQL, UsageWriter.previousSQL])
    func openStateIsReadFromTheOpenIntervals(sql: String) throws {
        let steps = try plan(sql.replacingOccurrences(of: "?", with: "1"))
        #expect(steps.first == "SCAN i USING INDEX interval_open", "\(steps)")
        #expect(steps.dropFirst().allSatisfy { $0.hasPrefix("SEARCH") || $0.hasPrefix("CORRELATED") }, "\(steps)")
    }

    /// An unchanged snapshot reads its host's open state as one row, by its key.
    @Test(arguments: [OpenState.cachedSQL, OpenState.holdersSQL])
    func openStateRowIsReadByItsKey(sql: String) throws {
        #expect(try plan(sql.replacingOccurrences(of: "?", with: "1")) == ["SEARCH open_state USING INTEGER PRIMARY KEY (rowid=?)"])
    }

    @Test func policyQueriesWalkRecentSnapshotsOnly() throws {
        let latest = try plan(HolderCache.latestSnapshotSQL)
        #expect(latest == ["SCAN snapshot"])
        let lastFull = try plan(HolderCache.lastFullWalkSQL.replacingOccurrences(of: "?", with: "1"))
        // The rowid order serves ORDER BY id DESC LIMIT 1: no sort, no time index; the count
        // of later snapshots walks the rowid from there.
        #expect(lastFull.first == "SCAN f", "\(lastFull)")
        #expect(lastFull.count == 3 && lastFull[2].contains("INTEGER PRIMARY KEY (rowid>?)"), "\(lastFull)")
        // Through the time index SQLite would sort every snapshot of the host: 0.1 s a year on.
        let previous = try plan(Store.previousSnapshotSQL.replacingOccurrences(of: "?", with: "1"))
        #expect(previous == ["SCAN snapshot"])
    }
}
