import Foundation
import GRDB
import Testing
@testable import PortAuditKit

/// Coverage, gaps and prune against real listeners. Snapshots are real collections; only
/// their clock is set, so that months pass in a second.
extension LiveSystemTests {
    /// Real collection into `db`, stamped `at`.
    func snapshot(_ db: String, at date: Date) throws {
        _ = try Store(path: db, access: .readWrite).snapshot(from: LinuxListenerSource(), clock: { date })
    }

    /// After the snapshots stop, tables no longer say "now" for what the latest one saw:
    /// they show its time and say how old it is.
    @Test func tablesSayNowOnlyWhileSnapshotsAreCurrent() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let db = directory.file("store.db")
        let listener = try Listeners("tcp4")
        defer { listener.stop() }
        let port = listener.sockets[0].port, pid = listener.sockets[0].pid
        let last = Date().addingTimeInterval(-3 * 3600).rounded()
        for minutes in [15.0, 10, 5, 0] { try snapshot(db, at: last.addingTimeInterval(-60 * minutes)) }
        func rowAndFooter(_ arguments: String...) throws -> (row: String, footer: String?) {
            let result = try portaudit(arguments + ["--db", db, "--wide", "--utc"])
            try #require(result.status == 0, "\(result.stderr)")
            let lines = result.stdout.split(separator: "\n").map(String.init)
            let row = try #require(lines.first { $0.contains(":\(port) ") || $0.hasSuffix(":\(port)") }, "\(result.stdout)")
            return (row, lines.last { $0.hasPrefix("Listening means") })
        }
        let lastText = Timestamp.human(last, utc: true)
        for command in [["ports"], ["process", "\(pid)"]] {
            let stale = try rowAndFooter(command[0], command.count > 1 ? command[1] : "--all")
            #expect(!stale.row.contains(" now") && stale.row.contains(lastText), "\(command): \(stale.row)")
            #expect(stale.footer?.contains("latest snapshot, \(lastText), 3h ago") == true, "\(command): \(stale.footer ?? "no footer")")
        }
        try #require(try portaudit("snapshot", "--db", db, "--quiet").status == 0)
        let current = try rowAndFooter("ports", "--all")
        #expect(current.row.contains(" now"), "\(current.row)")
        #expect(current.footer == nil)
    }

    /// A store holding two machines: each one's rows say "now" only if that machine's own
    /// snapshots are current.
    @Test func nowIsDecidedPerHost() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let db = directory.file("store.db")
        let listener = try Listeners("tcp4")
        defer { listener.stop() }
        try #require(try portaudit("snapshot", "--db", db, "--quiet").status == 0)
        let old = Timestamp.milliseconds(Date().addingTimeInterval(-86_400))
        try DatabaseQueue(path: db).write { db in
            try db.execute(sql: """
                INSERT INTO host (id, machine_id, hostname) VALUES (900, 'retired', 'retired-host');
                INSERT INTO netns (id, host_id, inode) VALUES (900, 900, 1);
                INSERT INTO snapshot (id, host_id, netns_id, started_at, duration_ms, as_root, source, listeners, sockets,
                                      unattributed, opened, closed, changed)
                VALUES (900000, 900, 900, ?, 1, 1, 'netlink', 1, 1, 0, 1, 0, 0);
                INSERT INTO listener (id, netns_id, protocol, address, port) VALUES (900, 900, 'tcp', '0.0.0.0', 4999);
                INSERT INTO listener_interval (listener_id, first_snapshot_id, socket_count, state_hash) VALUES (900, 900000, 1, 0);
                """, arguments: [old])
        }
        let result = try portaudit("ports", "--db", db, "--wide", "--utc")
        try #require(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        let retired = try #require(lines.first { $0.contains(":4999 ") }, "\(result.stdout)")
        #expect(retired.contains(Timestamp.human(Timestamp.date(milliseconds: old), utc: true)) && !retired.contains(" now"))
        let current = try #require(lines.first { $0.contains(":\(listener.sockets[0].port) ") }, "\(result.stdout)")
        #expect(current.contains(" now"), "the current host's rows: \(result.stdout)")
        #expect(lines.contains { $0.hasPrefix("Listening means listening at the latest snapshot of retired-host, ") })
        #expect(!lines.contains { $0.hasPrefix("Listening means") && !$0.contains("retired-host") })
    }

    /// Snapshots leave their few pages in the WAL for the next run, and the WAL is checkpointed
    /// and cut to nothing once it passes its size: it never grows past that, and is not
    /// checkpointed at every run.
    @Test func walIsCheckpointedPastItsSizeNotAtEveryRun() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let db = directory.file("store.db")
        func walBytes() throws -> Int { (try FileManager.default.attributesOfItem(atPath: db + "-wal")[.size] as? Int) ?? -1 }
        func snapshot() throws -> (changed: Bool, wal: Int) {
            let result = try portaudit("snapshot", "--db", db)
            try #require(result.status == 0, "\(result.stderr)")
            return (!result.stdout.contains(" 0 opened, 0 closed") || result.stdout.contains("changed holders"), try walBytes())
        }
        _ = try snapshot()
        let listener = try Listeners("tcp4")
        defer { listener.stop() }
        let opened = try snapshot()
        #expect(opened.changed)
        var sizes: [Int] = [opened.wal]
        for _ in 0..<(Store.walCheckpointPages / 2 + 10) { sizes.append(try snapshot().wal) }
        #expect(sizes.allSatisfy { $0 <= (Store.walCheckpointPages + 8) * (4096 + 24) }, "WAL grew: \(sizes)")
        #expect(zip(sizes, sizes.dropFirst()).contains { $0 > 0 && $1 == 0 }, "never checkpointed: \(sizes)")
        #expect(sizes.filter { $0 > 0 }.count * 2 >= sizes.count, "checkpointed at almost every run: \(sizes)")
    }

    @Test func gapIsReportedAndHistoryDoesNotClaimPresenceAcrossIt() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let db = directory.file("store.db")
        let port = try freePort()
        let listener = try Listeners("tcp4:\(port)")
        defer { listener.stop() }

        let start = Date().addingTimeInterval(-86_400).rounded()
        let beforeGap = (0..<6).map { start.addingTimeInterval(Double($0) * 300) }
        let afterGap = (0..<4).map { beforeGap.last!.addingTimeInterval(5 * 3600 + Double($0) * 300) }
        for time in beforeGap + afterGap { try snapshot(db, at: time) }

        let status = try portaudit("status", "--db", db, "--format", "json")
        try #require(status.status == 0, "\(status.stderr)")
        let json = try #require(try parseJSON(status.stdout) as? [String: Any])
        #expect(json["snapshots"] as? Int == 10)
        #expect(json["schema_version"] as? String == Schema.migrations.last?.name)
        let host = try #require((json["hosts"] as? [[String: Any]])?.first)
        #expect(host["usual_interval_seconds"] as? Double == 300)
        #expect(host["first_snapshot"] as? String == Timestamp.iso(beforeGap[0]))
        #expect(host["last_snapshot"] as? String == Timestamp.iso(afterGap.last!))
        let gaps = try #require(host["gaps"] as? [[String: Any]])
        #expect(gaps.count == 1)
        #expect(gaps.first?["from"] as? String == Timestamp.iso(beforeGap.last!))
        #expect(gaps.first?["to"] as? String == Timestamp.iso(afterGap[0]))
        // Written by the snapshot that ended the pause, and computed the same by migration 0007
        // from a history written before it.
        let gapRows = "SELECT host_id, from_at, to_at, usual_ms FROM coverage_gap ORDER BY from_at"
        let written = try DatabaseQueue(path: db).read { db in try Row.fetchAll(db, sql: gapRows) }
        #expect(written.count == 1)
        #expect(written.first?["usual_ms"] == 300_000)
        let remigrated = try remigrate0007(db, into: directory.file("remigrated.db"))
        #expect(try DatabaseQueue(path: remigrated).read { db in try Row.fetchAll(db, sql: gapRows) } == written)
        let text = try portaudit("status", "--db", db, "--utc")
        #expect(text.stdout.contains("gaps           1"), "\(text.stdout)")
        #expect(text.stdout.contains("5h"), "\(text.stdout)")

        let history = try portaudit("history", "\(port)", "--db", db, "--format", "json")
        try #require(history.status == 0, "\(history.stderr)")
        let intervals = try #require((try parseJSON(history.stdout) as? [String: Any])?["intervals"] as? [[String: Any]])
        try #require(intervals.count == 1)
        let unobserved = try #require(intervals[0]["unobserved"] as? [[String: Any]])
        #expect(unobserved.count == 1)
        #expect(unobserved.first?["from"] as? String == Timestamp.iso(beforeGap.last!))
        #expect(unobserved.first?["to"] as? String == Timestamp.iso(afterGap[0]))
        let table = try portaudit("history", "\(port)", "--db", db, "--utc", "--wide")
        #expect(table.stdout.contains("unknown from \(Timestamp.human(beforeGap.last!, utc: true)) to \(Timestamp.human(afterGap[0], utc: true))"),
                "\(table.stdout)")

        // A listener seen only after the gap spans no gap.
        let late = try Listeners("udp4")
        defer { late.stop() }
        try snapshot(db, at: afterGap.last!.addingTimeInterval(300))
        let lateHistory = try portaudit("history", "\(late.sockets[0].port)/udp", "--db", db, "--format", "json")
        let lateIntervals = try #require((try parseJSON(lateHistory.stdout) as? [String: Any])?["intervals"] as? [[String: Any]])
        #expect((lateIntervals.first?["unobserved"] as? [Any])?.isEmpty == true)

        // Monitoring: stale a day later, fresh with a recent snapshot.
        let stale = try portaudit("status", "--db", db, "--check")
        #expect(stale.status == 1)
        #expect(stale.stderr.hasPrefix("portaudit: stale: last snapshot"), "\(stale.stderr)")
        #expect(stale.stderr.split(separator: "\n").count == 1)
        let staleJSON = try portaudit("status", "--db", db, "--check", "--format", "json")
        #expect(staleJSON.status == 1)
        let verdict = try #require(try parseJSON(staleJSON.stdout) as? [String: Any], "\(staleJSON.stdout)")
        #expect(verdict["ok"] as? Bool == false)
        #expect(verdict["last_snapshot"] as? String == Timestamp.iso(afterGap.last!.addingTimeInterval(300)))
        let age = try #require(verdict["age_seconds"] as? Double), limit = try #require(verdict["limit_seconds"] as? Double)
        #expect(age > limit)
        try #require(try portaudit("snapshot", "--db", db, "--quiet").status == 0)
        let fresh = try portaudit("status", "--db", db, "--check")
        #expect(fresh.status == 0, "\(fresh.stderr)")
        #expect(fresh.stdout.hasPrefix("ok: "))
        let freshJSON = try portaudit("status", "--db", db, "--check", "--format", "json")
        #expect(freshJSON.status == 0)
        #expect((try parseJSON(freshJSON.stdout) as? [String: Any])?["ok"] as? Bool == true, "\(freshJSON.stdout)")
    }

    @Test func statusCheckFailsOnAnEmptyOrMissingStore() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let missing = try portaudit("status", "--db", directory.file("none.db"), "--check")
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("no store at"))
    }

    /// Listener A appears at s2 and is still listening (with a new holder since s5) after
    /// the cut; B lived and died long before it.
    @Test func pruneKeepsTrueFirstSeenOfListenersThatOutliveTheCut() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let db = directory.file("store.db")
        let day = 86_400.0
        let now = Date().rounded()
        let portA = try freePort()

        try snapshot(db, at: now.addingTimeInterval(-200 * day))                      // s1: neither
        var a = try Listeners("tcp4:\(portA)")
        let b = try Listeners("udp4")
        try snapshot(db, at: now.addingTimeInterval(-200 * day + 300))               // s2: A, B
        b.stop()
        try snapshot(db, at: now.addingTimeInterval(-199 * day))                      // s3: A
        try snapshot(db, at: now.addingTimeInterval(-195 * day))                      // s4: A (removable)
        try snapshot(db, at: now.addingTimeInterval(-192 * day))                      // s5: A (removable)
        a.stop()
        a = try Listeners("tcp4:\(portA)")
        defer { a.stop() }
        try snapshot(db, at: now.addingTimeInterval(-190 * day))                      // s6: A, new holder
        try snapshot(db, at: now.addingTimeInterval(-10 * day))                       // s7
        try snapshot(db, at: now.addingTimeInterval(-1 * day))                        // s8

        let before = try portaudit("history", "\(portA)", "--db", db, "--format", "json")
        let historyBefore = try #require(try parseJSON(before.stdout) as? [String: Any])
        let portB = b.sockets[0].port

        let dry = try portaudit("prune", "--older-than", "180d", "--dry-run", "--db", db, "--format", "json")
        try #require(dry.status == 0, "\(dry.stderr)")
        let dryReport = try #require(try parseJSON(dry.stdout) as? [String: Any])
        let count = { try DatabaseQueue(path: db).read { try Int.fetchOne($0, sql: "SELECT count(*) FROM snapshot") } }
        #expect(try count() == 8, "a dry run changes nothing")

        let real = try portaudit("prune", "--older-than", "180d", "--db", db, "--format", "json")
        try #require(real.status == 0, "\(real.stderr)")
        let report = try #require(try parseJSON(real.stdout) as? [String: Any])
        #expect(report["snapshots_removed"] as? Int == 2)
        #expect(report["intervals_removed"] as? Int == 1)   // B
        #expect(report["processes_removed"] as? Int == 1)   // B's holder
        for key in ["snapshots_removed", "intervals_removed", "processes_removed", "listeners_removed"] {
            #expect(dryReport[key] as? Int == report[key] as? Int, "\(key)")
        }
        #expect(try count() == 6)
        #expect((report["bytes_after"] as? Int ?? .max) <= (report["bytes_before"] as? Int ?? 0))
        let (integrity, freePages) = try DatabaseQueue(path: db).read { db in
            (try String.fetchOne(db, sql: "PRAGMA integrity_check"), try Int.fetchOne(db, sql: "PRAGMA freelist_count"))
        }
        #expect(integrity == "ok")
        #expect(freePages == 0, "the space was reclaimed")

        // A keeps its true first-seen, its "appeared between" and both holders.
        let after = try portaudit("history", "\(portA)", "--db", db, "--format", "json")
        let historyAfter = try #require(try parseJSON(after.stdout) as? [String: Any])
        #expect(historyAfter["first_seen"] as? String == Timestamp.iso(now.addingTimeInterval(-200 * day + 300)))
        #expect(historyAfter["first_seen"] as? String == historyBefore["first_seen"] as? String)
        #expect(historyAfter["appeared_after"] as? String == historyBefore["appeared_after"] as? String)
        let intervals = try #require(historyAfter["intervals"] as? [[String: Any]])
        #expect(intervals.count == 2)
        #expect(intervals.map { $0["began"] as? String } == ["appeared", "changed"])
        // The pruned stretch is not a gap; the 9-day pause from s7 to s8, judged a gap when s8
        // was written (the snapshots came every 1 to 4 days then), still is.
        let cutISO = Timestamp.iso(now.addingTimeInterval(-180 * day))
        let unobserved = intervals.flatMap { ($0["unobserved"] as? [[String: Any]]) ?? [] }
        #expect(unobserved.map { $0["from"] as? String } == [Timestamp.iso(now.addingTimeInterval(-10 * day))], "\(unobserved)")
        #expect(unobserved.allSatisfy { ($0["from"] as? String ?? "") >= cutISO })
        // B is gone entirely.
        let gone = try portaudit("history", "\(portB)/udp", "--db", db, "--format", "json")
        let goneHistory = try #require(try parseJSON(gone.stdout) as? [String: Any])
        #expect(goneHistory["first_seen"] is NSNull)
        // Unknown before the cut, not "never": B did listen then.
        #expect((goneHistory["pruned_before"] as? String ?? "") > Timestamp.iso(now.addingTimeInterval(-181 * day)))
        #expect((goneHistory["first_seen_statement"] as? String)?.contains("history before it was pruned") == true)
        let goneText = try portaudit("history", "\(portB)/udp", "--db", db)
        #expect(goneText.stdout.contains("Not seen listening since ") && goneText.stdout.contains("history before it was pruned"),
                "\(goneText.stdout)")
        #expect(!goneText.stdout.contains("Never seen"))

        let status = try #require(try parseJSON(try portaudit("status", "--db", db, "--format", "json").stdout) as? [String: Any])
        let host = try #require((status["hosts"] as? [[String: Any]])?.first)
        #expect(host["pruned_before"] is String)
        let gaps = try #require(host["gaps"] as? [[String: Any]])
        #expect(gaps.map { $0["from"] as? String } == [Timestamp.iso(now.addingTimeInterval(-10 * day))], "\(gaps)")
    }

    /// A cut after every snapshot: the newest survives (it dates what still listens), and so
    /// does the usage a kept listener carried into it, which the snapshot it was first seen at
    /// holds (before, that snapshot's removal failed on its foreign key).
    @Test func pruneKeepsTheNewestSnapshotAndTheUsageBeforeTheCut() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let db = directory.file("store.db")
        let day = 86_400.0
        let now = Date().rounded()
        let listener = try Listeners("tcp4")
        defer { listener.stop() }
        let port = listener.sockets[0].port
        try snapshot(db, at: now.addingTimeInterval(-200 * day))                      // s1: idle
        let client = try connectLoopback(port: port)
        defer { close(client) }
        try snapshot(db, at: now.addingTimeInterval(-190 * day))                      // s2: 1 connection, a usage row
        try snapshot(db, at: now.addingTimeInterval(-185 * day))                      // s3: unchanged, removable
        let newest = now.addingTimeInterval(-2 * day)
        try snapshot(db, at: newest)                                                  // s4: unchanged

        let pruned = try portaudit("prune", "--older-than", "1d", "--db", db, "--format", "json")
        try #require(pruned.status == 0, "\(pruned.stderr)")
        let report = try #require(try parseJSON(pruned.stdout) as? [String: Any])
        #expect(report["snapshots_removed"] as? Int == 1, "s3 only: \(pruned.stdout)")
        let (latest, dangling) = try DatabaseQueue(path: db).read { db in
            (try Int64.fetchOne(db, sql: "SELECT max(started_at) FROM snapshot"), try Row.fetchAll(db, sql: "PRAGMA foreign_key_check"))
        }
        #expect(latest == Timestamp.milliseconds(newest))
        #expect(dangling.isEmpty)
        let history = try #require(try parseJSON(try portaudit("history", "\(port)", "--db", db, "--format", "json").stdout) as? [String: Any])
        #expect(history["latest_snapshot"] as? String == Timestamp.iso(newest), "\(history)")
        // The connection seen since s2 is still counted at s4.
        let usage = try #require(try parseJSON(try portaudit("usage", "--per-listener", "--since", "3d", "--port", "\(port)",
                                                             "--db", db, "--format", "json").stdout) as? [[String: Any]])
        #expect(usage.first?["connections_max"] as? Int == 1, "\(usage)")
    }

    @Test(arguments: [false, true])
    func pruneRefusesAMissingStoreAndCreatesNone(dryRun: Bool) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("typo/s.db")
        let result = try portaudit(["prune", "--older-than", "180d", "--db", path] + (dryRun ? ["--dry-run"] : []))
        #expect(result.status != 0)
        #expect(result.stderr.hasPrefix("portaudit: no store at \(path)"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: directory.file("typo")))
    }

    @Test(arguments: [("soon", "number followed by"), ("6M", "months or minutes")])
    func badPruneDurationIsOneClearLine(duration: String, reason: String) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let result = try portaudit("prune", "--older-than", duration, "--db", directory.file("s.db"))
        #expect(result.status != 0)
        #expect(result.stderr.hasPrefix("portaudit: "))
        #expect(result.stderr.contains("not a duration"))
        #expect(result.stderr.contains(reason), "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1)
        #expect(!FileManager.default.fileExists(atPath: directory.file("s.db")))
    }
}

extension Date {
    /// Whole milliseconds, as the store keeps them.
    func rounded() -> Date { Timestamp.date(milliseconds: Timestamp.milliseconds(self)) }
}
