import Foundation
import GRDB
import Testing
@testable import PortAuditKit

/// Pure pieces of running in production: durations, gap detection, redaction.
@Suite struct ProductionUnitTests {
    @Test func durationsParseWithTheirUnit() throws {
        #expect(try DurationText.seconds("30s") == 30)
        #expect(try DurationText.seconds("5m") == 300)
        #expect(try DurationText.seconds("2h") == 7200)
        #expect(try DurationText.seconds("180d") == 180 * 86400)
        #expect(try DurationText.seconds("2W") == 14 * 86400)
        for bad in ["", "5", "m", "-5m", "0m", "5x", "1.5h", "5 m"] {
            #expect(throws: DurationText.Invalid.self, "\(bad)") { try DurationText.seconds(bad) }
        }
        // Six months to one reader, six minutes to another: prune would cut nearly everything.
        let months = #expect(throws: DurationText.Invalid.self) { try DurationText.seconds("6M") }
        #expect(months?.description.contains("months or minutes") == true)
        #expect(throws: DurationText.Invalid.self) { try DurationText.fractionalSeconds("5M") }
        #expect(try DurationText.fractionalSeconds("200MS") == 0.2)
        #expect(DurationText.exact(300) == "5m")
        #expect(DurationText.exact(90) == "90s")
        #expect(DurationText.exact(7200) == "2h")
        #expect(DurationText.approximate(298) == "4m 58s")
        #expect(DurationText.approximate(3 * 3600 + 600) == "3h 10m")
    }

    /// The usual interval comes from the snapshots `snapshot` wrote, not watch's; in a store
    /// only watch writes, from watch's.
    @Test func usualIntervalIsTheSchedulesUnlessOnlyWatchWrites() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("s.db")
        _ = try Store(path: path, access: .readWrite)
        let queue = try DatabaseQueue(path: path)
        let base: Int64 = 1_700_000_000_000
        try queue.write { db in
            try db.execute(sql: """
                INSERT INTO host (id, machine_id, hostname) VALUES (1, 'm', 'h');
                INSERT INTO netns (id, host_id, inode) VALUES (1, 1, 1);
                INSERT INTO watch_run (id, host_id, pid, started_at, updated_at, interval_ms, heartbeat_ms, checks, snapshots,
                                       cpu_user_ms, cpu_system_ms) VALUES (1, 1, 1, 0, 0, 500, 300000, 0, 0, 0, 0);
                """)
            // Five cron snapshots a minute apart, then ten of a watch two seconds apart.
            let times = (0..<5).map { (base + $0 * 60_000, nil as Int64?) } + (1...10).map { (base + 4 * 60_000 + $0 * 2_000, 1 as Int64?) }
            for (time, run) in times {
                try db.execute(sql: """
                    INSERT INTO snapshot (host_id, netns_id, started_at, duration_ms, as_root, source, listeners, sockets,
                                          unattributed, opened, closed, changed)
                    VALUES (1, 1, ?, 1, 1, 'netlink', 0, 0, 0, 0, 0, 0)
                    """, arguments: [time])
                if let run {
                    try db.execute(sql: "INSERT INTO watch_snapshot (snapshot_id, watch_run_id) VALUES (?, ?)",
                                   arguments: [db.lastInsertedRowID, run])
                }
            }
        }
        let scheduled = try queue.read { db in try Coverage.recentSnapshots(db, host: 1).scheduled }
        #expect(scheduled == (0..<5).reversed().map { base + $0 * 60_000 })
        #expect(Coverage.analyse(times: scheduled).usual == 60)
        // A minute after the watch's last snapshot: no gap, judged by cron's minute.
        #expect(Coverage.gap(endingAt: base + 4 * 60_000 + 80_000, after: scheduled, previous: base + 4 * 60_000 + 20_000) == nil)
        // Without enough cron snapshots to judge by, watch's own say what is usual.
        try queue.write { db in try db.execute(sql: "INSERT OR IGNORE INTO watch_snapshot SELECT id, 1 FROM snapshot") }
        #expect(try queue.read { db in try Coverage.recentSnapshots(db, host: 1).scheduled }.count == 15)
    }

    @Test func gapIsAPauseMuchLongerThanTheUsualInterval() {
        let minute: Int64 = 60_000
        let base: Int64 = 1_700_000_000_000
        var times = (0..<10).map { base + $0 * 5 * minute }
        times += (0..<5).map { base + 9 * 5 * minute + 4 * 60 * minute + $0 * 5 * minute }
        let (usual, gaps) = Coverage.analyse(times: times.shuffled())
        #expect(usual == 300)
        #expect(gaps == [CoverageGap(from: Timestamp.date(milliseconds: base + 45 * minute),
                                     to: Timestamp.date(milliseconds: base + 45 * minute + 240 * minute))])
        // A late run (twice the interval) is not a gap.
        let late = [base, base + 5 * minute, base + 10 * minute, base + 20 * minute, base + 25 * minute]
        #expect(Coverage.analyse(times: late).gaps.isEmpty)
        // Several snapshots of one run (one per namespace) do not shrink the usual interval.
        let bursts = [base, base + 10, base + 5 * minute, base + 5 * minute + 10, base + 10 * minute, base + 10 * minute + 10]
        #expect(Coverage.analyse(times: bursts).usual == 300)
        #expect(Coverage.analyse(times: bursts).gaps.isEmpty)
        #expect(Coverage.analyse(times: [base]).usual == nil)
        #expect(Coverage.analyse(times: []).gaps.isEmpty)
    }

    @Test func gapLiesWithinAnIntervalOnlyWhenTheIntervalSpansIt() {
        let gap = CoverageGap(from: Date(timeIntervalSince1970: 100), to: Date(timeIntervalSince1970: 200))
        #expect(gap.lies(within: Date(timeIntervalSince1970: 50), Date(timeIntervalSince1970: 250)))
        #expect(gap.lies(within: Date(timeIntervalSince1970: 100), Date(timeIntervalSince1970: 200)))
        #expect(!gap.lies(within: Date(timeIntervalSince1970: 200), Date(timeIntervalSince1970: 300)))
        #expect(!gap.lies(within: Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: 100)))
    }

    @Test(arguments: [
        ("mysqld --password=hunter2 --port=3306", "mysqld --password=*** --port=3306"),
        ("app --db-password=s3cr3t", "app --db-password=***"),
        ("app --password hunter2 --verbose", "app --password *** --verbose"),
        ("worker token=abcdef123 mode=fast", "worker token=*** mode=fast"),
        ("env PGPASSWORD=pw psql", "env PGPASSWORD=*** psql"),
        ("svc --api-key=K1 --client_secret=X2", "svc --api-key=*** --client_secret=***"),
        ("svc --auth-token abc", "svc --auth-token ***"),
        ("mysql -u root -p secret db", "mysql -u root -p *** db"),
        ("mysql -u root -psecret db", "mysql -u root -p*** db"),
        ("proxy --upstream https://admin:pa55@example.com/x", "proxy --upstream https://admin:***@example.com/x"),
        ("redis-cli -u redis://:pw@127.0.0.1:6379", "redis-cli -u redis://:***@127.0.0.1:6379"),
        ("curl -H Authorization: Bearer bear555 https://example.invalid/", "curl -H Authorization: Bearer *** https://example.invalid/"),
        ("agent --header Authorization:Basic dXNlcjpwdw==", "agent --header Authorization:Basic ***"),
        ("app --theme basic app:app", "app --theme basic app:app"),
        ("agent --url=postgres://u:p@db/name", "agent --url=postgres://u:***@db/name"),
    ])
    func redactionMasksEachSecretPattern(input: String, expected: String) {
        #expect(CommandLineRedaction.redact(input) == expected)
    }

    @Test func redactionLeavesOrdinaryCommandLinesAlone() {
        for line in ["nginx: master process /usr/sbin/nginx -g daemon off;", "python3 -m http.server 8080",
                     "sshd -D", "/usr/bin/app --port=80 --author=me --passes=3", "curl https://example.com/a@b",
                     "app --password", ""] {
            #expect(CommandLineRedaction.redact(line) == line, "\(line)")
        }
    }

    @Test func commandLinePolicyIsOrderedByStrictness() {
        #expect(max(CommandLinePolicy.full, .redact) == .redact)
        #expect(max(CommandLinePolicy.none, .redact) == .none)
        #expect(CommandLinePolicy.none.apply("a --password=x") == nil)
        #expect(CommandLinePolicy.redact.apply("a --password=x") == "a --password=***")
        #expect(CommandLinePolicy.full.apply("a --password=x") == "a --password=x")
    }
}
