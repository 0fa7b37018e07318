import Foundation
import GRDB
#if canImport(Glibc)
import Glibc
#endif

/// `portaudit watch`: a check every interval, a snapshot written only when it matters.
///
/// What is written, and why "first seen between A and B" stays exact:
/// - a check whose listeners, sockets and holders equal the previous check's writes
///   nothing (compared in memory, the store is not even opened for writing);
/// - a check that differs is written, and so is the unchanged check just before it, so
///   the store holds the last check without the change (A) and the first with it (B),
///   one interval apart, as if every check had been written;
/// - after `heartbeat` without a write the latest check is written anyway, so an
///   unchanged machine still shows when it was last looked at;
/// - on stop the last unwritten check is written, so coverage runs to the end.
/// The watch_run row, updated in the same transactions, records the checks, the time of
/// the last one, and the CPU time used.
public struct Watcher<Source: ListenerSource> {
    public struct Settings: Sendable {
        public var interval: Double
        public var heartbeat: Double

        public init(interval: Double, heartbeat: Double) {
            self.interval = interval
            self.heartbeat = heartbeat
        }
    }

    /// Why a snapshot was written.
    public enum Reason: String, Sendable {
        case start, change, beforeChange = "before-change", heartbeat, resumed, stop
    }

    public let store: Store
    public let source: Source
    public let settings: Settings
    let clock: () -> Date

    public init(store: Store, source: Source, settings: Settings, clock: @escaping () -> Date = Date.init) {
        self.store = store
        self.source = source
        self.settings = settings
        self.clock = clock
    }

    /// The figures of a finished run.
    public struct Report: Sendable {
        public var checks = 0
        public var snapshots = 0
        public var cpuSeconds = 0.0
    }

    /// What listens, reduced to what a change means: the state of every listener in every
    /// namespace read, and which namespaces could be read.
    struct State: Equatable {
        var listeners: [NamespacedKey: Int64]
        var namespaces: Set<UInt64>
        var unread: Set<UInt64>

        init(_ observation: Observation) {
            listeners = Dictionary(grouping: observation.sockets) {
                NamespacedKey(netns: observation.namespace(of: $0), key: $0.key)
            }.mapValues { ListenerState(key: $0[0].key, sockets: $0).fingerprint }
            namespaces = Set(observation.namespacesRead.map(\.inode))
            unread = observation.unreadNamespaces
        }
    }

    /// Runs until `stop` is requested; `written` is told of each snapshot stored.
    public func run(until stop: StopSignal, written: (SnapshotSummary, Reason) -> Void = { _, _ in }) throws -> Report {
        var report = Report()
        var runID: Int64?
        var lastState: State?
        var lastWrittenSnapshot: Int64?
        var lastWriteAt = Date.distantPast
        /// The latest check, when it was not written because nothing had changed.
        var pending: (observation: Observation, started: Date, collected: Date)?
        let runStarted = clock()

        /// `collected`, for a check written late, ends its duration where its collection ended.
        func record(_ observation: Observation, started: Date, reason: Reason, lastCheck: Date, collected: Date? = nil,
                    continuity: Continuity = .continuous) throws {
            let summary = try store.record(observation, describer: source, started: started,
                                           clock: collected.map { end in { end } } ?? clock,
                                           continuity: lastWrittenSnapshot == nil ? .judgedByHistory : continuity) { db, summary in
                report.snapshots += 1
                runID = try saveRun(db, id: runID, snapshot: summary.id, started: runStarted, report: report,
                                    lastCheck: lastCheck, stopped: nil)
                try db.execute(sql: "INSERT INTO watch_snapshot (snapshot_id, watch_run_id) VALUES (?, ?)", arguments: [summary.id, runID])
            }
            lastWrittenSnapshot = summary.id
            lastWriteAt = started
            written(summary, reason)
        }

        var next = clock()
        var previousCheck: Date?
        while !stop.isRequested {
            let started = clock()
            let observation = try source.observe()
            let collected = clock()
            report.checks += 1
            let state = State(observation)
            // Another writer (a cron snapshot) may have stored something else since.
            let storeMoved = try lastWrittenSnapshot != nil && store.latestSnapshotID() != lastWrittenSnapshot
            // Checks stopped for a while (the machine slept, the process was stopped): what
            // happened since the previous check is unknown, a gap however little changed.
            let pausedSince = previousCheck.flatMap { started.timeIntervalSince($0) > Coverage.gapFactor * settings.interval ? $0 : nil }
            previousCheck = started
            if lastState == nil {
                try record(observation, started: started, reason: .start, lastCheck: started)
                pending = nil
            } else if pausedSince != nil || state != lastState || storeMoved {
                if let before = pending, !storeMoved {
                    try record(before.observation, started: before.started, reason: .beforeChange, lastCheck: started,
                               collected: before.collected)
                }
                try record(observation, started: started, reason: pausedSince == nil ? .change : .resumed, lastCheck: started,
                           continuity: pausedSince.map { .pausedSince($0, usualMs: Int64(settings.interval * 1000)) } ?? .continuous)
                pending = nil
            } else if started.timeIntervalSince(lastWriteAt) >= settings.heartbeat {
                try record(observation, started: started, reason: .heartbeat, lastCheck: started)
                pending = nil
            } else {
                pending = (observation, started, collected)
            }
            lastState = state
            next = Self.nextCheck(after: next, interval: settings.interval, now: clock())
            if stop.wait(seconds: next.timeIntervalSince(clock())) { break }
        }

        // Coverage to the end: the last check, if it was not written, then the stop time.
        if let last = pending, let lastWrittenSnapshot, try store.latestSnapshotID() == lastWrittenSnapshot {
            try record(last.observation, started: last.started, reason: .stop, lastCheck: last.started, collected: last.collected)
        }
        report.cpuSeconds = Self.cpuTime().total
        if let runID {
            let lastCheck = pending?.started ?? lastWriteAt
            try store.write { db in
                _ = try saveRun(db, id: runID, snapshot: nil, started: runStarted, report: report, lastCheck: lastCheck, stopped: clock())
            }
        }
        return report
    }

    /// The next check on the interval's grid; a check that overran skips the missed slots
    /// instead of running them back to back.
    static func nextCheck(after previous: Date, interval: Double, now: Date) -> Date {
        var next = previous.addingTimeInterval(interval)
        if next <= now {
            let missed = (now.timeIntervalSince(next) / interval).rounded(.down) + 1
            next = next.addingTimeInterval(missed * interval)
        }
        return next
    }

    /// Creates or updates this run's row; returns its id.
    private func saveRun(_ db: Database, id: Int64?, snapshot: Int64?, started: Date, report: Report,
                         lastCheck: Date, stopped: Date?) throws -> Int64 {
        let cpu = Self.cpuTime()
        let now = Timestamp.milliseconds(clock())
        if let id {
            try db.execute(sql: """
                UPDATE watch_run SET updated_at = ?, stopped_at = ?, checks = ?, snapshots = ?, last_check_at = ?,
                                     cpu_user_ms = ?, cpu_system_ms = ?
                WHERE id = ?
                """, arguments: [now, stopped.map(Timestamp.milliseconds), report.checks, report.snapshots,
                                 Timestamp.milliseconds(lastCheck), Int64(cpu.user * 1000), Int64(cpu.system * 1000), id])
            return id
        }
        let host = try Int64.fetchOne(db, sql: "SELECT host_id FROM snapshot WHERE id = ?", arguments: [snapshot])
        try db.execute(sql: """
            INSERT INTO watch_run (host_id, pid, started_at, updated_at, stopped_at, interval_ms, heartbeat_ms, checks,
                                   snapshots, last_check_at, cpu_user_ms, cpu_system_ms)
            VALUES (?, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [host, getpid(), Timestamp.milliseconds(started), now,
                             Int64(settings.interval * 1000), Int64(settings.heartbeat * 1000), report.checks,
                             report.snapshots, Timestamp.milliseconds(lastCheck),
                             Int64(cpu.user * 1000), Int64(cpu.system * 1000)])
        return db.lastInsertedRowID
    }

    /// CPU seconds this process has used, user and system (all threads).
    static func cpuTime() -> (user: Double, system: Double, total: Double) {
        var usage = rusage()
        guard getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage) == 0 else { return (0, 0, 0) }
        let user = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        let system = Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
        return (user, system, user + system)
    }
}

extension Store {
    /// Id of the newest snapshot, nil for an empty store.
    func latestSnapshotID() throws -> Int64? {
        try read { db in try Int64.fetchOne(db, sql: "SELECT max(id) FROM snapshot") }
    }
}
