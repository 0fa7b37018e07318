import Foundation
import GRDB

/// One run of `portaudit watch` as the store recorded it: for `status`.
public struct WatchRunStatus: Encodable, Sendable, Equatable {
    public var pid: Int32
    public var startedAt: Date
    /// When the figures below were last written (each snapshot the run writes, and its stop).
    public var updatedAt: Date
    /// Set by a clean stop (SIGTERM/SIGINT); nil while running, or if it was killed.
    public var stoppedAt: Date?
    public var intervalMs: Int64
    public var heartbeatMs: Int64
    public var checks: Int64
    public var snapshots: Int64
    /// The last check, whether it was written or not.
    public var lastCheckAt: Date?
    public var cpuUserMs: Int64
    public var cpuSystemMs: Int64

    /// CPU seconds used per hour of watching, over the span the figures cover.
    public var cpuSecondsPerHour: Double? {
        let span = updatedAt.timeIntervalSince(startedAt)
        guard span > 0 else { return nil }
        return Double(cpuUserMs + cpuSystemMs) / 1000 / span * 3600
    }

    enum CodingKeys: String, CodingKey {
        case pid, startedAt, updatedAt, stoppedAt, intervalMs, heartbeatMs, checks, snapshots, lastCheckAt,
             cpuUserMs, cpuSystemMs, cpuSecondsPerHour
    }

    /// Absent values are written as null, so every record has every field.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(pid, forKey: .pid)
        try c.encode(startedAt, forKey: .startedAt)
        try c.encode(updatedAt, forKey: .updatedAt)
        try c.encode(stoppedAt, forKey: .stoppedAt)
        try c.encode(intervalMs, forKey: .intervalMs)
        try c.encode(heartbeatMs, forKey: .heartbeatMs)
        try c.encode(checks, forKey: .checks)
        try c.encode(snapshots, forKey: .snapshots)
        try c.encode(lastCheckAt, forKey: .lastCheckAt)
        try c.encode(cpuUserMs, forKey: .cpuUserMs)
        try c.encode(cpuSystemMs, forKey: .cpuSystemMs)
        try c.encode(cpuSecondsPerHour, forKey: .cpuSecondsPerHour)
    }
}

extension Store {
    /// The most recent watch runs, newest first.
    public func watchRuns(limit: Int = 10) throws -> [WatchRunStatus] {
        try read { db in
            try Row.fetchAll(db, sql: """
                SELECT * FROM watch_run ORDER BY started_at DESC, id DESC LIMIT ?
                """, arguments: [limit]).map { row in
                WatchRunStatus(
                    pid: row["pid"], startedAt: Timestamp.date(milliseconds: row["started_at"]),
                    updatedAt: Timestamp.date(milliseconds: row["updated_at"]),
                    stoppedAt: (row["stopped_at"] as Int64?).map(Timestamp.date(milliseconds:)),
                    intervalMs: row["interval_ms"], heartbeatMs: row["heartbeat_ms"], checks: row["checks"],
                    snapshots: row["snapshots"],
                    lastCheckAt: (row["last_check_at"] as Int64?).map(Timestamp.date(milliseconds:)),
                    cpuUserMs: row["cpu_user_ms"], cpuSystemMs: row["cpu_system_ms"])
            }
        }
    }
}
