import Foundation
import GRDB

/// A stretch of time with no snapshot, much longer than the usual interval: the machine
/// was off or the schedule broken. Nothing is known about listeners inside it.
public struct CoverageGap: Codable, Sendable, Equatable {
    /// The last snapshot before the gap.
    public var from: Date
    /// The first snapshot after it.
    public var to: Date

    public init(from: Date, to: Date) {
        self.from = from
        self.to = to
    }

    public var duration: TimeInterval { to.timeIntervalSince(from) }

    /// Whether the gap lies inside [start, end]: an interval first seen before it and
    /// last seen after it spans it, and was not observed during it.
    public func lies(within start: Date, _ end: Date) -> Bool { from >= start && to <= end }
}

extension [CoverageGap] {
    /// The gaps that lie inside [start, end].
    func within(_ start: Date, _ end: Date) -> [CoverageGap] { filter { $0.lies(within: start, end) } }
}

/// When one host was observed: its snapshots, their usual spacing, and the gaps.
public struct HostCoverage: Encodable, Sendable {
    public var hostID: Int64
    public var hostname: String
    public var snapshots: Int
    public var firstSnapshot: Date?
    public var lastSnapshot: Date?
    /// The median spacing of the recent snapshots (after the latest prune); nil with fewer
    /// than two.
    public var usualInterval: TimeInterval?
    public var gaps: [CoverageGap]
    /// Snapshots before this time were pruned (some are kept to date listeners that outlived it).
    public var prunedBefore: Date?


    enum CodingKeys: String, CodingKey {
        case hostname, snapshots, firstSnapshot, lastSnapshot, usualInterval = "usualIntervalSeconds", gaps, prunedBefore
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(hostname, forKey: .hostname)
        try c.encode(snapshots, forKey: .snapshots)
        try c.encode(firstSnapshot, forKey: .firstSnapshot)
        try c.encode(lastSnapshot, forKey: .lastSnapshot)
        try c.encode(usualInterval, forKey: .usualInterval)
        try c.encode(gaps, forKey: .gaps)
        try c.encode(prunedBefore, forKey: .prunedBefore)
    }
}

/// Gap detection, reusable by every query that turns intervals into statements of presence.
public enum Coverage {
    /// A pause counts as a gap when it is longer than this many usual intervals.
    public static let gapFactor = 3.0
    /// How many of the latest snapshots say what the usual interval is: enough that a few late
    /// runs do not move the median, few enough that after the schedule changes (every minute
    /// to every 5) the median follows within 16 runs.
    static let recentSnapshots = 32
    /// Fewer spacings than this say nothing usual yet (two manual runs seconds apart, then cron).
    static let spacingsToJudge = 3

    /// The times of a host's latest scheduled snapshots (at most `recentSnapshots`) before
    /// `time` and not before `cut`, newest first: what says how often `snapshot` runs. Those
    /// a watch run wrote are left out (their changes come seconds apart, and a short session
    /// would make every later pause between cron's snapshots read as a gap), unless too few
    /// others remain among the latest to judge by, as in a store only watch writes. With
    /// them, the newest snapshot of any kind in that span (the one a pause runs from).
    static let recentSnapshotsSQL = """
        SELECT s.started_at, w.snapshot_id IS NULL FROM snapshot s LEFT JOIN watch_snapshot w ON w.snapshot_id = s.id
        WHERE s.host_id = ? AND s.started_at < ? AND s.started_at >= ?
        ORDER BY s.started_at DESC LIMIT ?
        """

    static func recentSnapshots(_ db: Database, host: Int64, before time: Int64 = .max, notBefore cut: Int64 = .min) throws
        -> (scheduled: [Int64], newest: Int64?) {
        // Read through a cursor, column by column: copying each of the 128 rows into a Row was
        // most of what every snapshot spends judging its pause.
        var latest: [Int64] = []
        var scheduled: [Int64] = []
        let rows = try Row.fetchCursor(db.cachedStatement(sql: recentSnapshotsSQL), arguments: [host, time, cut, 4 * recentSnapshots])
        while let row = try rows.next() {
            let startedAt: Int64 = row[0]
            latest.append(startedAt)
            if row[1] as Bool && scheduled.count < recentSnapshots { scheduled.append(startedAt) }
        }
        return (scheduled.count > spacingsToJudge ? scheduled : Array(latest.prefix(recentSnapshots)), latest.first)
    }

    /// The gap that a snapshot at `time` ends, judged against `earlier` (the host's latest
    /// scheduled snapshots before it, any order) after the pause since `previous` (the latest
    /// snapshot of any kind; by default the latest of `earlier`); nil when the pause is not
    /// one, or is the same run.
    static func gap(endingAt time: Int64, after earlier: [Int64], previous: Int64? = nil,
                    factor: Double = gapFactor) -> (gap: CoverageGap, usualMs: Int64)? {
        guard let previous = previous ?? earlier.max(), time - previous >= 1000,
              let (usual, spacings) = usualSpacing(runs(earlier)), spacings >= spacingsToJudge,
              Double(time - previous) > factor * usual
        else { return nil }
        return (CoverageGap(from: Timestamp.date(milliseconds: previous), to: Timestamp.date(milliseconds: time)),
                Int64(usual.rounded()))
    }

    /// The gaps in `times` (ms since epoch, any order), with the usual interval they were
    /// judged against: the rule applied to a whole history at once (status before migration
    /// 0007, and the view coverage_gap_from_history that 0007 filled coverage_gap with).
    public static func analyse(times: [Int64], factor: Double = gapFactor) -> (usual: TimeInterval?, gaps: [CoverageGap]) {
        let runs = runs(times)
        guard let (median, _) = usualSpacing(runs) else { return (nil, []) }
        var gaps: [CoverageGap] = []
        for (a, b) in zip(runs, runs.dropFirst()) where Double(b.first - a.last) > factor * median {
            gaps.append(CoverageGap(from: Timestamp.date(milliseconds: a.last), to: Timestamp.date(milliseconds: b.first)))
        }
        return (median / 1000, gaps)
    }

    /// Snapshots less than a second after the previous one belong to the same run: several
    /// snapshots of one run are one observation.
    static func runs(_ times: [Int64]) -> [(first: Int64, last: Int64)] {
        var runs: [(first: Int64, last: Int64)] = []
        for time in times.sorted() {
            if let last = runs.last, time - last.last < 1000 {
                runs[runs.count - 1].last = time
            } else {
                runs.append((time, time))
            }
        }
        return runs
    }

    /// The median spacing of consecutive runs' starts, in ms, and how many spacings it is of.
    static func usualSpacing(_ runs: [(first: Int64, last: Int64)]) -> (ms: Double, spacings: Int)? {
        let spacings = zip(runs, runs.dropFirst()).map { $1.first - $0.first }.sorted()
        guard !spacings.isEmpty else { return nil }
        let middle = spacings.count / 2
        let median = spacings.count % 2 == 1 ? Double(spacings[middle]) : Double(spacings[middle - 1] + spacings[middle]) / 2
        return (median, spacings.count)
    }
}

extension Store {
    /// Coverage of every host in the store.
    public func coverage() throws -> [HostCoverage] {
        try read { db in try CoverageQuery(db: db).all() }
    }
}

extension Store {
    /// Each host's newest snapshot, and whether it still speaks for the present: no older than
    /// `intervals` usual intervals of its host's recent snapshots (`fallbackInterval` while
    /// there are fewer than two), the rule of `status --check`.
    public func latestSnapshots(now: Date = Date(), intervals: Double = 3, fallbackInterval: TimeInterval = 300) throws
        -> [(hostname: String, time: Date, isCurrent: Bool)] {
        try read { db in
            let cut = try CoverageQuery(db: db).latestCut() ?? .min
            return try Row.fetchAll(db, sql: "SELECT id, hostname FROM host ORDER BY id").compactMap { host in
                guard let latest = try Int64.fetchOne(db, sql: HistoryQuery.latestSnapshotSQL, arguments: [host["id"] as Int64]) else {
                    return nil
                }
                let usual = Coverage.analyse(times: try Coverage.recentSnapshots(db, host: host["id"], notBefore: cut).scheduled).usual
                let time = Timestamp.date(milliseconds: latest)
                return (host["hostname"], time, now.timeIntervalSince(time) <= intervals * (usual ?? fallbackInterval))
            }
        }
    }
}

/// Coverage read inside an open transaction, for queries that need it.
struct CoverageQuery {
    let db: Database

    func all() throws -> [HostCoverage] {
        try Row.fetchAll(db, sql: "SELECT id, hostname FROM host ORDER BY id").map { row in
            try host(row["id"], hostname: row["hostname"])
        }
    }

    /// The gaps of one host, as the collector recorded them (migration 0007).
    func gaps(host hostID: Int64) throws -> [CoverageGap] {
        try Row.fetchAll(db, sql: "SELECT from_at, to_at FROM coverage_gap WHERE host_id = ? ORDER BY from_at",
                         arguments: [hostID]).map { row in
            CoverageGap(from: Timestamp.date(milliseconds: row[0]), to: Timestamp.date(milliseconds: row[1]))
        }
    }

    func host(_ hostID: Int64, hostname: String? = nil) throws -> HostCoverage {
        let cut = try latestCut()
        // Three statements, not one: min and max alone are each one index seek, while next to
        // count(*) they would make SQLite walk the whole index a second time.
        // Where no other host has a snapshot, the whole table's count is this host's, and SQLite
        // takes that from the index pages' cell counts (4 ms for a year of one-minute snapshots),
        // where counting one host's walks its entries (36 ms, most of `status`). Two index seeks tell.
        let alone = try Bool.fetchOne(db, sql: """
            SELECT NOT EXISTS (SELECT 1 FROM snapshot WHERE host_id < ?1) AND NOT EXISTS (SELECT 1 FROM snapshot WHERE host_id > ?1)
            """, arguments: [hostID]) ?? false
        let count = try Int.fetchOne(db, sql: alone ? "SELECT count(*) FROM snapshot" : "SELECT count(*) FROM snapshot WHERE host_id = ?",
                                     arguments: alone ? [] : [hostID]) ?? 0
        let first = try Int64.fetchOne(db, sql: "SELECT min(started_at) FROM snapshot WHERE host_id = ?", arguments: [hostID])
        let last = try Int64.fetchOne(db, sql: "SELECT max(started_at) FROM snapshot WHERE host_id = ?", arguments: [hostID])
        // The usual spacing now, as the collector judges a pause: that of the recent snapshots
        // (before the cut only those dating surviving listeners remain, which say nothing).
        let recent = try Coverage.recentSnapshots(db, host: hostID, notBefore: cut ?? .min).scheduled
        let name = try hostname ?? String.fetchOne(db, sql: "SELECT hostname FROM host WHERE id = ?", arguments: [hostID]) ?? ""
        return HostCoverage(hostID: hostID, hostname: name, snapshots: count,
                            firstSnapshot: first.map(Timestamp.date(milliseconds:)),
                            lastSnapshot: last.map(Timestamp.date(milliseconds:)),
                            usualInterval: Coverage.analyse(times: recent).usual, gaps: try gaps(host: hostID),
                            prunedBefore: cut.map(Timestamp.date(milliseconds:)))
    }

    static let latestCutSQL = "SELECT max(cut_before) FROM prune"

    func latestCut() throws -> Int64? {
        try Int64.fetchOne(db.cachedStatement(sql: Self.latestCutSQL))
    }
}
