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

/// When one host was observed: its snapshots, their usual spacing, and the gaps.
public struct HostCoverage: Encodable, Sendable {
    public var hostID: Int64
    public var hostname: String
    public var snapshots: Int
    public var firstSnapshot: Date?
    public var lastSnapshot: Date?
    /// The median spacing of consecutive snapshots (after the latest prune); nil with
    /// fewer than two.
    public var usualInterval: TimeInterval?
    public var gaps: [CoverageGap]
    /// Snapshots before this time were pruned (some are kept to date listeners that outlived it).
    public var prunedBefore: Date?

    /// The gaps that lie inside [start, end].
    public func gaps(within start: Date, _ end: Date) -> [CoverageGap] {
        gaps.filter { $0.lies(within: start, end) }
    }

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

    /// The gaps in `times` (ms since epoch, any order), with the usual interval they were
    /// judged against. Snapshots less than a second apart count as one run: several
    /// snapshots of one run (one per namespace) are one observation.
    public static func analyse(times: [Int64], factor: Double = gapFactor) -> (usual: TimeInterval?, gaps: [CoverageGap]) {
        // Runs: snapshots less than a second after the previous one belong to the same run.
        var runs: [(first: Int64, last: Int64)] = []
        for time in times.sorted() {
            if let last = runs.last, time - last.last < 1000 {
                runs[runs.count - 1].last = time
            } else {
                runs.append((time, time))
            }
        }
        let spacings = zip(runs, runs.dropFirst()).map { $1.first - $0.first }.sorted()
        guard !spacings.isEmpty else { return (nil, []) }
        let middle = spacings.count / 2
        let median = spacings.count % 2 == 1 ? Double(spacings[middle]) : Double(spacings[middle - 1] + spacings[middle]) / 2
        var gaps: [CoverageGap] = []
        for (a, b) in zip(runs, runs.dropFirst()) where Double(b.first - a.last) > factor * median {
            gaps.append(CoverageGap(from: Timestamp.date(milliseconds: a.last), to: Timestamp.date(milliseconds: b.first)))
        }
        return (median / 1000, gaps)
    }
}

extension Store {
    /// Coverage of every host in the store.
    public func coverage() throws -> [HostCoverage] {
        try read { db in try CoverageQuery(db: db).all() }
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

    func host(_ hostID: Int64, hostname: String? = nil) throws -> HostCoverage {
        let cut = try latestCut()
        let times = try Int64.fetchAll(db, sql: "SELECT started_at FROM snapshot WHERE host_id = ? ORDER BY started_at",
                                       arguments: [hostID])
        // Before the cut only the snapshots that date surviving listeners remain: their
        // spacing says nothing about how the machine was observed.
        let (usual, gaps) = Coverage.analyse(times: cut.map { cut in times.filter { $0 >= cut } } ?? times)
        let name = try hostname ?? String.fetchOne(db, sql: "SELECT hostname FROM host WHERE id = ?", arguments: [hostID]) ?? ""
        return HostCoverage(hostID: hostID, hostname: name, snapshots: times.count,
                            firstSnapshot: times.first.map(Timestamp.date(milliseconds:)),
                            lastSnapshot: times.last.map(Timestamp.date(milliseconds:)),
                            usualInterval: usual, gaps: gaps, prunedBefore: cut.map(Timestamp.date(milliseconds:)))
    }

    func latestCut() throws -> Int64? {
        guard try db.tableExists("prune") else { return nil }
        return try Int64.fetchOne(db, sql: "SELECT max(cut_before) FROM prune")
    }
}
