import Foundation
import GRDB
import GRDBSQLite
import Synchronization
import Testing
@testable import PortAuditKit

/// The store's schema, its refusals, and the command line's handling of bad input.
@Suite struct StoreTests {
    @Test func binaryCarriesExactlyTheMigrationsDirectory() throws {
        let directory = repositoryRoot.appendingPathComponent("Migrations")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".sql") }.sorted()
        #expect(!files.isEmpty)
        #expect(Schema.migrations.map { $0.name + ".sql" } == files)
        for migration in Schema.migrations {
            let text = try String(contentsOf: directory.appendingPathComponent(migration.name + ".sql"), encoding: .utf8)
            #expect(migration.sql == text, "embedded \(migration.name) differs from the file")
        }
        for file in files { #expect(file.range(of: #"^\d{4}_[a-z0-9_]+\.sql$"#, options: .regularExpression) != nil, "\(file)") }
    }

    @Test func binaryCopiedAloneCreatesAndMigratesAStore() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let binary = directory.file("portaudit")
        try FileManager.default.copyItem(atPath: portauditBinary, toPath: binary)
        let db = directory.file("nested/dir/store.db")
        let result = try run(binary, ["snapshot", "--db", db])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.hasPrefix("snapshot 1: "))
        let applied = try DatabaseQueue(path: db).read { db in
            try String.fetchAll(db, sql: "SELECT name FROM schema_migration ORDER BY name")
        }
        #expect(applied == Schema.migrations.map(\.name))
        let mode = try DatabaseQueue(path: db).read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }
        #expect(mode == "wal")
        let attributes = try FileManager.default.attributesOfItem(atPath: db)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let dirAttributes = try FileManager.default.attributesOfItem(atPath: directory.file("nested/dir"))
        #expect((dirAttributes[.posixPermissions] as? Int) == 0o700)
    }

    /// A store someone switched to a rollback journal (its header no longer says WAL) is put
    /// back in WAL by the next writer, which otherwise leaves the journal mode alone.
    @Test func aWriterPutsTheStoreBackInWAL() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("store.db")
        func header() throws -> [UInt8] { Array(try #require(FileManager.default.contents(atPath: path)).prefix(20)) }
        _ = try Store(path: path, access: .readWrite)
        #expect(Store.headerSaysWAL(try header()))
        try DatabaseQueue(path: path).writeWithoutTransaction { db in try db.execute(sql: "PRAGMA journal_mode = DELETE") }
        #expect(!Store.headerSaysWAL(try header()))
        _ = try Store(path: path, access: .readWrite)
        #expect(Store.headerSaysWAL(try header()))
        #expect(!Store.headerSaysWAL(Array(Store.sqliteHeader)))
    }

    /// Every connection enforces foreign keys; a writer's commits are not synced (NORMAL, atomic in
    /// WAL) and its log is cut back after a checkpoint. Set with one sqlite3_exec, not GRDB's.
    @Test func connectionsCarryTheStoresSettings() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("store.db")
        let names = ["foreign_keys", "synchronous", "journal_size_limit"]
        func settings(_ db: Database) throws -> [Int] { try names.map { try Int.fetchOne(db, sql: "PRAGMA \($0)") ?? -99 } }
        #expect(try Store(path: path, access: .readWrite).queue.inDatabase(settings) == [1, 1, 0])
        // A reader keeps SQLite's own defaults (as built: FULL and no limit in Debian's) for the other two.
        let defaults = try DatabaseQueue(path: directory.file("plain.db")).inDatabase(settings).dropFirst()
        #expect(try Store(path: path, access: .readOnly).queue.inDatabase(settings) == [1] + defaults)
        #expect(defaults != [1, 0])
        // Enforced, not only reported: a holding of no interval is refused.
        let refused = #expect(throws: DatabaseError.self) {
            try Store(path: path, access: .readWrite).write { db in
                try db.execute(sql: "INSERT INTO holding (interval_id, inode, socket_uid, unattributed_reason) VALUES (12345, 1, 0, 'none')")
            }
        }
        #expect(refused?.extendedResultCode == .SQLITE_CONSTRAINT_FOREIGNKEY)
    }

    /// An unchanged snapshot's write runs the statements that `prepareWrite` compiled ahead, on
    /// the helper thread, and no others besides those that begin and end its transaction: one
    /// added to the write and not to the list, or run without the statement cache, would be
    /// compiled on the snapshot's path again.
    @Test func anUnchangedWriteRunsOnlyStatementsPreparedAhead() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let source = LinuxListenerSource()
        let observation = try source.observe()
        let started = Date()
        _ = try Store(path: directory.file("store.db"), access: .readWrite).record(observation, describer: source, started: started)

        // A new connection, as in a new process: nothing compiled but what prepareWrite compiles.
        let store = try Store(path: directory.file("store.db"), access: .readWrite)
        try store.prepareWrite()
        let prepared = Set(SnapshotWriteSQL.everyTime.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) })
        let compiled = store.queue.inDatabase { db in
            var found: [OpaquePointer] = []
            var statement = sqlite3_next_stmt(db.sqliteConnection, nil)
            while let current = statement {
                if prepared.contains(String(cString: sqlite3_sql(current)).trimmingCharacters(in: .whitespacesAndNewlines)) {
                    found.append(current)
                }
                statement = sqlite3_next_stmt(db.sqliteConnection, current)
            }
            return found
        }
        #expect(compiled.count == prepared.count)

        let executed = Mutex<[String]>([])
        store.queue.inDatabase { db in
            db.trace(options: .statement) { event in
                if case .statement(let statement) = event { executed.withLock { $0.append(statement.sql) } }
            }
        }
        let summary = try store.record(observation, describer: source, started: started.addingTimeInterval(60))
        #expect(summary.opened + summary.closed + summary.changed == 0)
        let runs = store.queue.inDatabase { _ in compiled.map { sqlite3_stmt_status($0, SQLITE_STMTSTATUS_RUN, 0) } }
        #expect(runs.allSatisfy { $0 > 0 }, "a statement compiled ahead that the write did not use")
        let transaction = ["BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE"]
        // A trigger's statements are reported as "-- TRIGGER name", part of the statement that fired it.
        let statements = executed.withLock { $0 }.filter { sql in !sql.hasPrefix("--") && !transaction.contains { sql.hasPrefix($0) } }
        #expect(statements.filter { !prepared.contains($0) } == [])
    }

    @Test func defaultLocationFollowsUserAndEnvironment() {
        func defaultPath(environment: [String: String], isRoot: Bool) -> String {
            StoreLocation.defaultPath(lookup: { environment[$0] }, isRoot: isRoot)
        }
        #expect(defaultPath(environment: [:], isRoot: true) == "/var/lib/portaudit/portaudit.db")
        #expect(defaultPath(environment: ["HOME": "/home/a"], isRoot: false) == "/home/a/.local/state/portaudit/portaudit.db")
        #expect(defaultPath(environment: ["HOME": "/home/a", "XDG_STATE_HOME": "/x"], isRoot: false) == "/x/portaudit/portaudit.db")
        #expect(defaultPath(environment: ["PORTAUDIT_DB": "/s.db"], isRoot: true) == "/s.db")
    }

    @Test func portauditDBVariableChoosesTheStore() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var environment = ProcessInfo.processInfo.environment
        environment["PORTAUDIT_DB"] = directory.file("env.db")
        #expect(try portaudit("snapshot", "--quiet", environment: environment).status == 0)
        #expect(FileManager.default.fileExists(atPath: directory.file("env.db")))
    }

    /// A store written by a future portaudit: refused, and not one byte changes.
    @Test func newerSchemaIsRefusedUnchanged() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let db = directory.file("store.db")
        try #require(try portaudit("snapshot", "--db", db, "--quiet").status == 0)
        try DatabaseQueue(path: db).write { db in
            try db.execute(sql: "INSERT INTO schema_migration (name, applied_at) VALUES ('9999_from_the_future', 0)")
        }
        let before = try storeBytes(db)
        for arguments in [["snapshot"], ["history", "22"]] {
            let result = try run(portauditBinary, arguments + ["--db", db])
            #expect(result.status != 0)
            #expect(result.stderr.contains("newer portaudit"), "\(result.stderr)")
            #expect(result.stderr.contains("9999_from_the_future"))
            #expect(result.stderr.split(separator: "\n").count == 1)
        }
        #expect(try storeBytes(db) == before)
    }

    @Test func damagedStoreIsRefusedUnchanged() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let db = directory.file("store.db")
        let garbage = Data((0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
        try garbage.write(to: URL(fileURLWithPath: db))
        for arguments in [["snapshot"], ["history", "22"]] {
            let result = try run(portauditBinary, arguments + ["--db", db])
            #expect(result.status != 0)
            #expect(result.stderr.contains("damaged or not a database"), "\(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1)
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: db)) == garbage)
    }

    /// A real store damaged two ways: every command that writes refuses it, and neither the
    /// file nor its log changes by a byte.
    @Test func damagedRealStoreIsNotWrittenTo() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        func damagedStore(_ name: String, at offset: UInt64, checkpointFirst: Bool) throws -> String {
            let db = directory.file(name)
            for _ in 0..<2 { try #require(try portaudit("snapshot", "--db", db, "--quiet").status == 0) }
            // The test's own connection, closing last, copies the log in and removes it.
            if checkpointFirst { _ = try DatabaseQueue(path: db).read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM snapshot") } }
            let handle = try FileHandle(forUpdating: URL(fileURLWithPath: db))
            try handle.seek(toOffset: offset)
            try handle.write(contentsOf: Data((0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 73 &+ 11) }))
            try handle.close()
            return db
        }
        let header = try damagedStore("header.db", at: 0, checkpointFirst: false)
        #expect(FileManager.default.fileExists(atPath: header + "-wal"))
        let pages = try damagedStore("pages.db", at: 4 * 4096, checkpointFirst: true)
        let writers = [["snapshot"], ["prune", "--older-than", "1d"], ["config", "cmdline", "redact"]]
        for (db, commands) in [(header, writers), (pages, Array(writers.dropFirst()))] {
            for arguments in commands {
                let before = try storeBytes(db)
                let result = try portaudit(arguments + ["--db", db])
                #expect(result.status != 0, "\(arguments) on \(db)")
                #expect(result.stderr.contains("damaged or not a database"), "\(arguments): \(result.stderr)")
                #expect(result.stderr.split(separator: "\n").count == 1)
                #expect(try storeBytes(db) == before, "\(arguments) changed \(db)")
            }
        }
        #expect(FileManager.default.fileExists(atPath: header + "-wal"))
    }

    /// status reports the store's size, not its link's, when --db names a link to it.
    @Test func statusThroughALinkSizesTheStore() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let db = directory.file("store.db"), link = directory.file("link.db")
        try #require(try portaudit("snapshot", "--db", db, "--quiet").status == 0)
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: db)
        let status = try portaudit("status", "--db", link, "--format", "json")
        try #require(status.status == 0, "\(status.stderr)")
        let bytes = try storeBytes(db).reduce(0) { $0 + $1.count }
        #expect((try parseJSON(status.stdout) as? [String: Any])?["bytes"] as? Int == bytes)
    }

    @Test func truncatedStoreIsRefused() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let db = directory.file("store.db")
        try #require(try portaudit("snapshot", "--db", db, "--quiet").status == 0)
        // Keep the header, lose the rest: a crash of the disk, not of portaudit.
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: db))
        try handle.truncate(atOffset: 1024)
        try handle.close()
        try? FileManager.default.removeItem(atPath: db + "-wal")
        try? FileManager.default.removeItem(atPath: db + "-shm")
        let result = try portaudit("history", "22", "--db", db)
        #expect(result.status != 0)
        #expect(result.stderr.hasPrefix("portaudit: "))
    }

    @Test func foreignDatabaseIsNotTouched() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let db = directory.file("other.db")
        try DatabaseQueue(path: db).write { db in try db.execute(sql: "CREATE TABLE accounts (id INTEGER PRIMARY KEY)") }
        let before = try storeBytes(db)
        let result = try portaudit("snapshot", "--db", db)
        #expect(result.status != 0)
        #expect(result.stderr.contains("not a portaudit store"))
        #expect(try storeBytes(db) == before)
    }

    @Test func lockedStoreTimesOutWithoutLosingAnything() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let db = directory.file("store.db")
        try #require(try portaudit("snapshot", "--db", db, "--quiet").status == 0)
        // Another process holds the write lock, as a slow snapshot would.
        let marker = directory.file("locked")
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        holder.arguments = ["python3", "-c", """
            import sqlite3, sys, time
            c = sqlite3.connect(sys.argv[1], isolation_level=None)
            c.execute("BEGIN IMMEDIATE")
            open(sys.argv[2], "w").close()
            time.sleep(3)
            c.execute("ROLLBACK")
            """, db, marker]
        try holder.run()
        while !FileManager.default.fileExists(atPath: marker) { usleep(10_000) }
        let started = Date()
        let result = try portaudit("snapshot", "--db", db, "--lock-timeout", "0.5")
        let waited = Date().timeIntervalSince(started)
        #expect(result.status != 0)
        #expect(result.stderr.contains("locked by another writer"), "\(result.stderr)")
        #expect(waited >= 0.4, "it should have waited for the lock")
        // A reader is not blocked by the writer (WAL).
        #expect(try portaudit("history", "22", "--db", db).status == 0)
        holder.waitUntilExit()
        // Once the lock is gone, a snapshot with the default timeout goes through.
        #expect(try portaudit("snapshot", "--db", db, "--quiet").status == 0)
        let count = try DatabaseQueue(path: db).read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM snapshot") }
        #expect(count == 2)
    }

    @Test func historyWithoutAStoreSaysSo() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let result = try portaudit("history", "22", "--db", directory.file("absent.db"))
        #expect(result.status != 0)
        #expect(result.stderr.contains("no store at"))
        #expect(!FileManager.default.fileExists(atPath: directory.file("absent.db")))
    }

    /// Where the store cannot be, or cannot be seen, the reason is the system's, not "no store".
    @Test func storePathErrorsSayWhy() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try #require(FileManager.default.createFile(atPath: directory.file("afile"), contents: Data()))
        let underAFile = try portaudit("snapshot", "--db", directory.file("afile/sub/store.db"))
        #expect(underAFile.status != 0)
        #expect(underAFile.stderr.contains("cannot create \(directory.file("afile/sub")): Not a directory"), "\(underAFile.stderr)")
        // Missing levels are created owner-only.
        try #require(try portaudit("snapshot", "--db", directory.file("new/deep/store.db"), "--quiet").status == 0)
        for level in ["new", "new/deep"] {
            #expect(try FileManager.default.attributesOfItem(atPath: directory.file(level))[.posixPermissions] as? Int == 0o700, "\(level)")
        }
        guard geteuid() == 0 else { return }
        // Another user who may not search the directory is told so, not that there is no store.
        chmod(directory.path, 0o755)
        let hidden = try run("/usr/sbin/runuser", ["-u", "nobody", "--", portauditBinary, "ports", "--db", directory.file("new/deep/store.db")])
        #expect(hidden.status != 0)
        #expect(hidden.stderr.contains("Permission denied") && !hidden.stderr.contains("no store at"), "\(hidden.stderr)")
    }

    /// What a reader meets while another process has just created the file and not migrated it.
    @Test func emptyFileReadsAsNoStoreYet() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let db = directory.file("store.db")
        try #require(FileManager.default.createFile(atPath: db, contents: Data()))
        let result = try portaudit("status", "--db", db)
        #expect(result.status != 0)
        #expect(result.stderr.contains("no store at"), "\(result.stderr)")
        #expect(try FileManager.default.attributesOfItem(atPath: db)[.size] as? Int == 0)
        // A snapshot makes it a store, owner-only like a store it creates (command lines can hold secrets).
        chmod(db, 0o644)
        try #require(try portaudit("snapshot", "--db", db, "--quiet").status == 0)
        for file in [db, db + "-wal", db + "-shm"] {
            #expect(try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int == 0o600, "\(file)")
        }
    }

    /// Migrations apply together or not at all, so that no reader or later run meets a
    /// schema half way between two versions.
    @Test func failedMigrationLeavesNoPartOfTheSchema() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let db = directory.file("store.db")
        let last = try #require(Schema.migrations.last?.name)
        // A ledger with nothing applied, and a table in the way of only the last migration.
        try DatabaseQueue(path: db).write { db in
            try db.execute(sql: Schema.createLedger)
            try db.execute(sql: "CREATE TABLE coverage_gap (x)")
        }
        let result = try portaudit("snapshot", "--db", db)
        #expect(result.status != 0)
        #expect(result.stderr.hasPrefix("portaudit: "), "\(result.stderr)")
        let (applied, hasSnapshots) = try DatabaseQueue(path: db).read { db in
            (try Schema.applied(db), try Schema.hasTable(db, "snapshot"))
        }
        #expect(applied.isEmpty, "\(last) failed, yet earlier migrations stayed: \(applied)")
        #expect(!hasSnapshots)
    }

    @Test func portNeverSeenExitsZeroWithItsRegistration() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let db = directory.file("store.db")
        try #require(try portaudit("snapshot", "--db", db, "--quiet").status == 0)
        let table = try portaudit("history", "1328", "--db", db)
        #expect(table.status == 0)
        #expect(table.stdout.contains("ewall"))
        #expect(table.stdout.contains("Never seen listening"))
        let json = try #require(try parseJSON(try portaudit("history", "1328", "--db", db, "--format", "json").stdout) as? [String: Any])
        #expect(json["first_seen"] is NSNull)
        #expect((json["intervals"] as? [Any])?.isEmpty == true)
        let registration = try #require(json["registration"] as? [String: Any])
        #expect(registration["range"] as? String == "registered")
        #expect((registration["services"] as? [[String: Any]])?.first?["service"] as? String == "ewall")
    }

    @Test(arguments: [
        (["history", "0"], "1 to 65535"),
        (["history", "65536"], "1 to 65535"),
        (["history", "http-x-no-such"], "service name"),
        (["history", "22/sctp"], "tcp or udp"),
        (["history", "22", "--format", "xml"], "xml"),
        (["now", "--format", "yaml"], "yaml"),
        (["snapshot", "--lock-timeout", "-1"], "lock-timeout"),
    ])
    func badInputIsOneClearLine(arguments: [String], mention: String) throws {
        try expectOneLineError(arguments, mentioning: mention)
    }
}

extension StoreTests {
    @Test func unknownCommandIsOneClearLine() throws {
        let result = try portaudit("bogus")
        #expect(result.status != 0)
        #expect(result.stderr.hasPrefix("portaudit: "))
        #expect(result.stderr.contains("bogus"))
        #expect(result.stderr.split(separator: "\n").count == 1)
    }
}

/// The main file and its WAL: together they are what a store holds.
func storeBytes(_ path: String) throws -> [Data] {
    try [path, path + "-wal"].map { FileManager.default.fileExists(atPath: $0) ? try Data(contentsOf: URL(fileURLWithPath: $0)) : Data() }
}
