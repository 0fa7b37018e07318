import Foundation
import GRDB
import Testing
@testable import PortAuditKit

/// `portaudit watch` running as a child process, stopped with SIGTERM.
final class WatchProcess {
    let process = Process()
    let output = Pipe()

    init(_ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: portauditBinary)
        process.arguments = ["watch"] + arguments
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    /// SIGTERM (or `signal`), then the exit status; gives up (SIGKILL) after a minute.
    func terminate(_ signal: Int32 = SIGTERM) throws -> Int32 {
        kill(process.processIdentifier, signal)
        let deadline = Date().addingTimeInterval(60)
        while process.isRunning {
            guard Date() < deadline else {
                kill(process.processIdentifier, SIGKILL)
                throw TestFailure("watch did not stop within a minute of signal \(signal)")
            }
            usleep(10_000)
        }
        return process.terminationStatus
    }

    var text: String { String(decoding: output.fileHandleForReading.availableData, as: UTF8.self) }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
}

/// Waits for `condition`, up to a minute.
func eventually(_ what: String, _ condition: () throws -> Bool) throws {
    let deadline = Date().addingTimeInterval(60)
    while try !condition() {
        guard Date() < deadline else { throw TestFailure("timed out waiting for \(what)") }
        usleep(20_000)
    }
}

extension LiveSystemTests {
    /// A listener that lives only between two cron snapshots is in history thanks to
    /// watch, with bounds from the checks around it; SIGTERM leaves a sound store.
    @Test func watchCatchesAListenerBetweenTwoSnapshots() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let db = directory.file("store.db")
        let port = try freePort()
        try #require(try portaudit("snapshot", "--db", db, "--quiet").status == 0)
        let store = try DatabaseQueue(path: db)
        let cronBefore = try store.read { db in try Int64.fetchOne(db, sql: "SELECT max(started_at) FROM snapshot") }!

        let watch = try WatchProcess(["--interval", "200ms", "--heartbeat", "1h", "--db", db])
        try eventually("the watch's first snapshot") {
            try store.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM watch_run") } == 1
        }
        func intervals() throws -> [Row] {
            try store.read { db in
                try Row.fetchAll(db, sql: """
                    SELECT i.* FROM listener_interval i JOIN listener l ON l.id = i.listener_id WHERE l.port = ?
                    """, arguments: [port])
            }
        }
        let listener = try Listeners("tcp4:\(port)")
        try eventually("watch to record the listener") { try intervals().count == 1 }
        listener.stop()
        try eventually("watch to record it closed") { try intervals().first?["ended_snapshot_id"] as Int64? != nil }
        try #require(try portaudit("snapshot", "--db", db, "--quiet").status == 0)
        let cronAfter = try store.read { db in try Int64.fetchOne(db, sql: "SELECT max(started_at) FROM snapshot") }!
        let status = try watch.terminate()
        #expect(status == 0, "\(watch.text)")

        let result = try portaudit("history", "\(port)", "--db", db, "--format", "json")
        try #require(result.status == 0, "\(result.stderr)")
        let history = try #require(try parseJSON(result.stdout) as? [String: Any])
        let interval = try #require((history["intervals"] as? [[String: Any]])?.first)
        #expect((history["intervals"] as? [Any])?.count == 1)
        let ms = { (key: String) -> Int64? in
            (interval[key] as? String).flatMap { try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse($0) }.map(Timestamp.milliseconds)
        }
        let appearedAfter = try #require(ms("appeared_after")), firstSeen = try #require(ms("first_seen"))
        let lastSeen = try #require(ms("last_seen")), goneBy = try #require(ms("gone_by"))
        #expect(interval["listening"] as? Bool == false)
        #expect(interval["ended"] as? String == "closed")
        #expect((interval["processes"] as? [[String: Any]])?.first?["pid"] as? Int == Int(listener.sockets[0].pid))
        // Seen only by watch: strictly between the two cron snapshots.
        #expect(cronBefore <= appearedAfter && appearedAfter < firstSeen && firstSeen <= lastSeen)
        #expect(lastSeen < goneBy && goneBy < cronAfter)

        // The store is whole after SIGTERM, and the run recorded its stop and CPU use.
        let check = try store.read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check") }
        #expect(check == ["ok"])
        let runs = try Store(path: db, access: .readOnly).watchRuns()
        try #require(runs.count == 1)
        #expect(runs[0].stoppedAt != nil)
        #expect(runs[0].pid == watch.process.processIdentifier)
        #expect(runs[0].checks >= runs[0].snapshots && runs[0].snapshots >= 3)
        #expect(runs[0].cpuUserMs + runs[0].cpuSystemMs > 0)
        #expect(runs[0].cpuSecondsPerHour != nil)
    }

    /// Watching a machine where nothing changes writes no listener, interval, holding or
    /// process row, and only its start and stop snapshots.
    @Test func unchangedMachineUnderWatchAddsNoListenerRows() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let db = directory.file("store.db")
        let fixture = try Listeners(["--socket", "tcp4,fork=2", "--socket", "udp6", "--socket", "tcp6,reuseport=2"])
        defer { fixture.stop() }
        // As in unchangedMachineAddsOnlySnapshotRows: the second snapshot settles readability.
        for _ in 0..<2 { try #require(try portaudit("snapshot", "--db", db, "--quiet").status == 0) }
        let store = try DatabaseQueue(path: db)
        func counts() throws -> [Int] {
            try store.read { db in
                try ["snapshot", "listener", "listener_interval", "holding", "process"].map {
                    try Int.fetchOne(db, sql: "SELECT count(*) FROM \($0)") ?? -1
                }
            }
        }
        let before = try counts()

        let watch = try WatchProcess(["--interval", "100ms", "--db", db])
        try eventually("the watch's first snapshot") {
            try store.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM watch_run") } == 1
        }
        usleep(2_000_000)
        #expect(try watch.terminate() == 0)

        let after = try counts()
        let run = try #require(try Store(path: db, access: .readOnly).watchRuns().first)
        try #require(run.checks >= 5, "too few checks to tell: \(run.checks)")
        #expect(Array(after[1...]) == Array(before[1...]))
        // The first check and the last one (written at stop); nothing in between.
        #expect(run.snapshots == 2)
        #expect(after[0] == before[0] + 2)
        let changes = try store.read { db in
            try Int.fetchOne(db, sql: "SELECT sum(opened + closed + changed) FROM snapshot WHERE id > 2")
        }
        #expect(changes == 0)
    }

    /// With a heartbeat shorter than the run, unchanged checks are still written now and
    /// then; SIGINT (Ctrl-C) stops it as cleanly as SIGTERM.
    @Test func heartbeatWritesUnchangedChecks() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let db = directory.file("store.db")
        let watch = try WatchProcess(["--interval", "100ms", "--heartbeat", "300ms", "--db", db])
        try eventually("a heartbeat snapshot") {
            guard FileManager.default.fileExists(atPath: db) else { return false }
            // The watch may be creating the store and hold its lock: not yet, then.
            let count = try? DatabaseQueue(path: db).read { db in
                try db.tableExists("watch_run") ? try Int.fetchOne(db, sql: "SELECT count(*) FROM snapshot") ?? 0 : 0
            }
            return (count ?? 0) >= 3
        }
        #expect(try watch.terminate(SIGINT) == 0)
        let run = try #require(try Store(path: db, access: .readOnly).watchRuns().first)
        #expect(run.stoppedAt != nil)
        #expect(run.snapshots >= 3)
        #expect(run.checks >= run.snapshots)
        let times = try DatabaseQueue(path: db).read { db in
            try Int64.fetchAll(db, sql: "SELECT started_at FROM snapshot ORDER BY id")
        }
        #expect(times == times.sorted())
        let gaps = try DatabaseQueue(path: db).read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM coverage_gap") }
        #expect(gaps == 0, "checks every 100 ms between the snapshots: no gap")
    }

    /// A short watch session (its changes written a second or so apart) says nothing of how
    /// often cron runs `snapshot`: the pauses between cron's later snapshots are no gaps. The
    /// snapshots are told apart by who wrote them, a cron run during the watch included.
    @Test func watchSessionLeavesTheScheduleAlone() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let db = directory.file("store.db")
        let start = Date().addingTimeInterval(-300).rounded()
        for minute in 0..<4 { try snapshot(db, at: start.addingTimeInterval(60 * Double(minute))) }
        let store = try DatabaseQueue(path: db)
        let count = { try store.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM snapshot") ?? 0 } }
        // A short session whose changes it writes a second or so apart.
        let watch = try WatchProcess(["--interval", "100ms", "--heartbeat", "1h", "--db", db])
        try eventually("the watch's first snapshot") { try store.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM watch_run") } == 1 }
        for _ in 0..<3 {
            var before = try count()
            let listener = try Listeners("tcp4")
            try eventually("watch to write the listener opened") { try count() > before }
            usleep(1_100_000)
            before = try count()
            listener.stop()
            try eventually("watch to write it closed") { try count() > before }
            usleep(1_100_000)
        }
        // cron runs during the watch too.
        let cron = try portaudit("snapshot", "--db", db)
        try #require(cron.status == 0, "\(cron.stderr)")
        // "snapshot N: …", not the latest id: the watch may write one just after.
        let cronDuringWatch = try #require(cron.stdout.split(separator: " ").dropFirst().first.flatMap { Int64($0.dropLast()) })
        #expect(try watch.terminate() == 0)
        let writers = try store.read { db in
            try Row.fetchAll(db, sql: """
                SELECT s.id, w.watch_run_id FROM snapshot s LEFT JOIN watch_snapshot w ON w.snapshot_id = s.id ORDER BY s.id
                """).map { ($0[0] as Int64, $0[1] as Int64?) }
        }
        let runID = try store.read { db in try Int64.fetchOne(db, sql: "SELECT id FROM watch_run") }
        #expect(writers.prefix(4).allSatisfy { $0.1 == nil }, "\(writers)")
        #expect(writers.dropFirst(4).allSatisfy { $0.0 == cronDuringWatch ? $0.1 == nil : $0.1 == runID }, "\(writers)")
        #expect(writers.count >= 4 + 7)
        let watchEnd = try #require(try store.read { db in try Int64.fetchOne(db, sql: "SELECT max(started_at) FROM snapshot") })
        // cron goes on every minute: none of its pauses is a gap.
        for minute in 1...3 { try snapshot(db, at: Timestamp.date(milliseconds: watchEnd).addingTimeInterval(60 * Double(minute))) }
        let gaps = try store.read { db in try Row.fetchAll(db, sql: "SELECT from_at, to_at, usual_ms FROM coverage_gap") }
        #expect(gaps.isEmpty, "\(gaps)")
        let status = try #require(try parseJSON(try portaudit("status", "--db", db, "--format", "json").stdout) as? [String: Any])
        #expect((status["hosts"] as? [[String: Any]])?.first?["usual_interval_seconds"] as? Double == 60)
    }

    /// A watch that stops checking (SIGSTOP here; a suspended machine alike) records the pause
    /// as a gap when it resumes, from its last check to the first after.
    @Test func watchRecordsAPauseInItsChecksAsAGap() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let db = directory.file("store.db")
        let watch = try WatchProcess(["--interval", "100ms", "--heartbeat", "1h", "--db", db])
        let snapshots = {
            (try? DatabaseQueue(path: db).read { db in
                try db.tableExists("watch_run") ? try Int.fetchOne(db, sql: "SELECT count(*) FROM snapshot") ?? 0 : 0
            }) ?? 0
        }
        try eventually("the first snapshot") { FileManager.default.fileExists(atPath: db) && snapshots() >= 1 }
        let before = snapshots()
        usleep(300_000)
        kill(watch.process.processIdentifier, SIGSTOP)
        usleep(1_500_000)
        kill(watch.process.processIdentifier, SIGCONT)
        try eventually("the snapshot after the pause") { snapshots() > before }
        #expect(try watch.terminate() == 0)
        let gaps = try DatabaseQueue(path: db).read { db in
            try Row.fetchAll(db, sql: "SELECT from_at, to_at, usual_ms FROM coverage_gap")
        }
        try #require(gaps.count == 1, "\(gaps)")
        let (from, to): (Int64, Int64) = (gaps[0]["from_at"], gaps[0]["to_at"])
        #expect(to - from >= 1_400)
        #expect(gaps[0]["usual_ms"] == 100)
        let stamps = try DatabaseQueue(path: db).read { db in try Set(Int64.fetchAll(db, sql: "SELECT started_at FROM snapshot")) }
        #expect(stamps.contains(from) && stamps.contains(to), "a gap runs from one snapshot to another")
    }
}
