import Foundation
import GRDB

/// What a prune removed (or, dry, would remove).
public struct PruneReport: Encodable, Sendable {
    public var cutBefore: Date
    public var dryRun: Bool
    public var snapshotsRemoved: Int
    /// Snapshots before the cut kept because they date a listener that outlived it.
    public var snapshotsKeptBeforeCut: Int
    public var intervalsRemoved: Int
    public var processesRemoved: Int
    public var listenersRemoved: Int
    public var bytesBefore: Int64
    public var bytesAfter: Int64
    /// Why the space was not reclaimed, when VACUUM failed after the removal was committed.
    public var reclaimFailure: String?

    enum CodingKeys: String, CodingKey {
        case cutBefore, dryRun, snapshotsRemoved, snapshotsKeptBeforeCut, intervalsRemoved, processesRemoved,
             listenersRemoved, bytesBefore, bytesAfter, reclaimFailure
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(cutBefore, forKey: .cutBefore)
        try c.encode(dryRun, forKey: .dryRun)
        try c.encode(snapshotsRemoved, forKey: .snapshotsRemoved)
        try c.encode(snapshotsKeptBeforeCut, forKey: .snapshotsKeptBeforeCut)
        try c.encode(intervalsRemoved, forKey: .intervalsRemoved)
        try c.encode(processesRemoved, forKey: .processesRemoved)
        try c.encode(listenersRemoved, forKey: .listenersRemoved)
        try c.encode(bytesBefore, forKey: .bytesBefore)
        try c.encode(bytesAfter, forKey: .bytesAfter)
        try c.encode(reclaimFailure, forKey: .reclaimFailure)
    }
}

extension Store {
    /// Removes the history that ended before `cut`. A listener still listening at the cut
    /// (or later) keeps every interval back to when it appeared, and the snapshots that
    /// date them, so its first-seen time and "appeared between" stay true. Space is
    /// reclaimed (VACUUM) afterwards. With `dryRun` everything is computed and rolled back.
    public func prune(before cut: Date, dryRun: Bool, now: Date = Date()) throws -> PruneReport {
        let bytesBefore = fileBytes()
        var report = try writeOrRollBack(commit: !dryRun, checkingForeignKeysAtEnd: true) { db in
            try Self.requireIntact(db)
            return try Self.prune(db, cut: Timestamp.milliseconds(cut), now: Timestamp.milliseconds(now), dryRun: dryRun)
        }
        report.bytesBefore = bytesBefore
        if !dryRun && report.snapshotsRemoved + report.intervalsRemoved > 0 {
            // The removal is committed; failing to reclaim the space (VACUUM needs room for
            // a copy) must not read as if nothing had been removed.
            do {
                try queue.writeWithoutTransaction { db in
                    try db.execute(sql: "VACUUM")
                    try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)")
                }
            } catch {
                report.reclaimFailure = "\(StoreError.from(error, path: path, lockTimeout: lockTimeout))"
            }
        }
        report.bytesAfter = dryRun ? bytesBefore : fileBytes()
        return report
    }

    private static func prune(_ db: Database, cut: Int64, now: Int64, dryRun: Bool) throws -> PruneReport {
        // Intervals that survive: still listening, or last seen at or after the cut, and
        // (recursively) the intervals of the same listener they directly continue.
        try db.execute(sql: "CREATE TEMP TABLE keep_interval (id INTEGER PRIMARY KEY)")
        try db.execute(sql: """
            WITH RECURSIVE keep(id, listener_id, first_snapshot_id) AS (
                SELECT i.id, i.listener_id, i.first_snapshot_id
                FROM listener_interval i LEFT JOIN snapshot s ON s.id = i.last_snapshot_id
                WHERE i.last_snapshot_id IS NULL OR s.started_at >= ?
                UNION
                SELECT p.id, p.listener_id, p.first_snapshot_id
                FROM listener_interval p JOIN keep k ON p.listener_id = k.listener_id AND p.ended_snapshot_id = k.first_snapshot_id
            )
            INSERT INTO keep_interval SELECT id FROM keep
            """, arguments: [cut])
        // Snapshots that survive: at or after the cut, every one a kept interval refers to,
        // the one just before each kept first snapshot ("appeared after"), and each host's
        // latest, which dates the intervals still open ("still listening at"). `+host_id`
        // walks the rowid back from a snapshot instead of reading all of the host's snapshots
        // through the time index for each kept interval, which did not finish on a year's store.
        try db.execute(sql: "CREATE TEMP TABLE keep_snapshot (id INTEGER PRIMARY KEY)")
        try db.execute(sql: """
            INSERT OR IGNORE INTO keep_snapshot
            SELECT id FROM snapshot WHERE started_at >= ?
            UNION SELECT i.first_snapshot_id FROM listener_interval i JOIN keep_interval k ON k.id = i.id
            UNION SELECT i.last_snapshot_id FROM listener_interval i JOIN keep_interval k ON k.id = i.id WHERE i.last_snapshot_id IS NOT NULL
            UNION SELECT i.ended_snapshot_id FROM listener_interval i JOIN keep_interval k ON k.id = i.id WHERE i.ended_snapshot_id IS NOT NULL
            UNION SELECT (SELECT max(p.id) FROM snapshot p WHERE +p.host_id = s.host_id AND p.id < s.id)
                  FROM listener_interval i JOIN keep_interval k ON k.id = i.id JOIN snapshot s ON s.id = i.first_snapshot_id
            UNION SELECT (SELECT max(s.id) FROM snapshot s WHERE +s.host_id = h.id) FROM host h
            """, arguments: [cut])
        // Usage rows hold a listener's values from their snapshot until the next row: each
        // surviving listener keeps its latest row before the cut, and that row's snapshot, so
        // that the kept time does not read as idle; its older rows go.
        try db.execute(sql: """
            INSERT OR IGNORE INTO keep_snapshot
            SELECT max(u.snapshot_id) FROM listener_usage u JOIN snapshot s ON s.id = u.snapshot_id
            WHERE s.started_at < ? AND u.listener_id IN (SELECT i.listener_id FROM listener_interval i JOIN keep_interval k ON k.id = i.id)
            GROUP BY u.listener_id
            """, arguments: [cut])
        try db.execute(sql: "DELETE FROM keep_snapshot WHERE id IS NULL")

        try db.execute(sql: "DELETE FROM listener_span; DELETE FROM listener_holder_name")  // rebuilt below
        try db.execute(sql: "DELETE FROM holding WHERE interval_id NOT IN (SELECT id FROM keep_interval)")
        try db.execute(sql: "DELETE FROM listener_interval WHERE id NOT IN (SELECT id FROM keep_interval)")
        let intervals = db.changesCount
        let keptBefore = try Int.fetchOne(db, sql: """
            SELECT count(*) FROM snapshot WHERE started_at < ? AND id IN (SELECT id FROM keep_snapshot)
            """, arguments: [cut]) ?? 0
        try db.execute(sql: "DELETE FROM listener_usage WHERE snapshot_id NOT IN (SELECT id FROM keep_snapshot)")
        try db.execute(sql: "DELETE FROM listener_usage WHERE listener_id NOT IN (SELECT listener_id FROM listener_interval)")
        try db.execute(sql: "DELETE FROM watch_snapshot WHERE snapshot_id NOT IN (SELECT id FROM keep_snapshot)")
        try db.execute(sql: "DELETE FROM snapshot WHERE id NOT IN (SELECT id FROM keep_snapshot)")
        let snapshots = db.changesCount
        try db.execute(sql: "DELETE FROM process WHERE id NOT IN (SELECT process_id FROM holding WHERE process_id IS NOT NULL)")
        let processes = db.changesCount
        try db.execute(sql: "DELETE FROM listener WHERE id NOT IN (SELECT listener_id FROM listener_interval)")
        let listeners = db.changesCount
        try db.execute(sql: "DROP TABLE keep_interval")
        try db.execute(sql: "DROP TABLE keep_snapshot")
        // The summaries the writer keeps (migration 0007), recomputed from what remains; gaps
        // before the cut are no longer gaps but pruned time.
        try db.execute(sql: "INSERT INTO listener_span " + SummariesFromHistory.listenerSpan)
        try db.execute(sql: "INSERT INTO listener_holder_name " + SummariesFromHistory.listenerHolderName)
        if !dryRun {
            try db.execute(sql: """
                INSERT INTO prune (pruned_at, cut_before, snapshots_removed, intervals_removed, processes_removed)
                VALUES (?, ?, ?, ?, ?)
                """, arguments: [now, cut, snapshots, intervals, processes])
        }
        // Before the cut is pruned time, not a gap; the gaps after it stay as they were judged
        // when written (against the schedule then, and what watch knew).
        try db.execute(sql: "DELETE FROM coverage_gap WHERE from_at < ?", arguments: [cut])
        return PruneReport(cutBefore: Timestamp.date(milliseconds: cut), dryRun: dryRun, snapshotsRemoved: snapshots,
                           snapshotsKeptBeforeCut: keptBefore, intervalsRemoved: intervals, processesRemoved: processes,
                           listenersRemoved: listeners, bytesBefore: 0, bytesAfter: 0, reclaimFailure: nil)
    }

    /// One IMMEDIATE transaction, committed or rolled back at the end (for dry runs). With
    /// `checkingForeignKeysAtEnd`, SQLite does not check each deleted row's references as it
    /// goes (one scan of every referring table per row where no index leads with the
    /// reference: a prune of a year's store ran three minutes): the whole store is checked
    /// once before the commit instead, and any dangling reference rolls everything back.
    func writeOrRollBack<T>(commit: Bool, checkingForeignKeysAtEnd: Bool = false, _ body: (Database) throws -> T) throws -> T {
        do {
            return try queue.writeWithoutTransaction { db in
                if checkingForeignKeysAtEnd { try db.execute(sql: "PRAGMA foreign_keys = OFF") }  // only outside a transaction
                defer { if checkingForeignKeysAtEnd { try? db.execute(sql: "PRAGMA foreign_keys = ON") } }
                var result: T?
                try db.inTransaction(.immediate) {
                    result = try body(db)
                    if checkingForeignKeysAtEnd, let dangling = try Row.fetchOne(db, sql: "PRAGMA foreign_key_check") {
                        throw DatabaseError(resultCode: .SQLITE_CONSTRAINT_FOREIGNKEY,
                                            message: "a row of \(dangling[0] as String) would refer to a removed row of \(dangling[2] as String)")
                    }
                    return commit ? .commit : .rollback
                }
                return result!
            }
        } catch {
            throw StoreError.from(error, path: path, lockTimeout: lockTimeout)
        }
    }
}

/// What the summaries of migration 0007 hold, computed from the history itself, in their
/// tables' column order: what a prune rebuilds them from. They were 0007's views until
/// migration 0010 (SQLite parsed them at every open), with this text; a live test checks that
/// the summaries the triggers keep equal these and what a rerun of 0007 writes.
enum SummariesFromHistory {
    static let listenerSpan = """
        SELECT l.id AS listener_id, f.id AS first_snapshot_id, f.started_at AS first_at,
               (SELECT b.started_at FROM snapshot b WHERE +b.host_id = f.host_id AND b.id < f.id ORDER BY b.id DESC LIMIT 1) AS appeared_after,
               (SELECT max(s.started_at) FROM listener_interval i JOIN snapshot s ON s.id = i.last_snapshot_id
                WHERE i.listener_id = l.id) AS last_closed_at,
               (SELECT count(DISTINCT h.process_id) FROM listener_interval i JOIN holding h ON h.interval_id = i.id
                WHERE i.listener_id = l.id) AS holder_count
        FROM listener l
        JOIN snapshot f ON f.id = (SELECT s.id FROM listener_interval i JOIN snapshot s ON s.id = i.first_snapshot_id
                                   WHERE i.listener_id = l.id ORDER BY s.started_at, s.id LIMIT 1)
        """

    static let listenerHolderName = """
        WITH held AS (
            SELECT DISTINCT i.listener_id, i.id, h.process_id, f.started_at AS first_at, la.started_at AS last_at
            FROM listener_interval i
            JOIN snapshot f ON f.id = i.first_snapshot_id
            JOIN snapshot la ON la.id = i.last_snapshot_id
            JOIN holding h ON h.interval_id = i.id AND h.process_id IS NOT NULL)
        SELECT held.listener_id, p.name, sum(max(1, held.last_at - held.first_at)) AS held_ms, max(held.last_at) AS latest_at
        FROM held JOIN process p ON p.id = held.process_id
        GROUP BY held.listener_id, p.name
        """
}
