import Foundation
import GRDB
import GRDBSQLite
import CLinuxDiag
#if canImport(Glibc)
import Glibc
#endif

/// The history store: one SQLite file, migrated to the schema in Migrations/.
public final class Store: @unchecked Sendable {
    public enum Access: Sendable { case readOnly, readWrite }

    public let path: String
    public let lockTimeout: Double
    /// Whether opening created the store (there was no file at `path`).
    public let created: Bool
    let queue: DatabaseQueue

    /// Opens (and for `.readWrite`, migrates, and creates unless `create` is false) the store
    /// at `path`.
    public init(path: String, access: Access, lockTimeout: Double = 30, create: Bool = true) throws {
        self.path = path
        self.lockTimeout = lockTimeout
        if geteuid() == 0 { try StoreAccess.refuseForeignLink(path) }
        var status = stat()
        let exists = stat(path, &status) == 0  // through root's own link
        // A directory the user may not search hides the store: that is no missing store.
        if !exists && errno == EACCES { throw StoreError.cannotOpen(path: path, detail: ProcFiles.errorDescription(EACCES)) }
        if (access == .readOnly || !create) && !exists { throw StoreError.missing(path: path) }
        created = !exists
        if access == .readWrite && !exists { try Self.createDirectory(for: path) }
        let start = access == .readWrite && exists ? Self.fileStart(path) : nil
        if let start, !start.isEmpty, !start.starts(with: Self.sqliteHeader) {
            throw StoreError.damaged(path: path, detail: "its first bytes are not an SQLite header")
        }

        Self.configured
        var config = Configuration()
        config.readonly = access == .readOnly
        config.busyMode = .timeout(lockTimeout)
        config.label = "portaudit"
        // Foreign keys are set below with the writer's pragmas, in one sqlite3_exec: GRDB would
        // run each through its statement machinery, cold in a new process (50 sockets: 0.25 ms).
        config.foreignKeysEnabled = false
        config.prepareDatabase { db in
            // WAL keeps readers from blocking the writer; NORMAL is still atomic in WAL.
            // The log is reused from its start after a checkpoint; cutting it to what was
            // just written leaves no stale tail (old command lines, pruned rows) behind.
            let pragmas = "PRAGMA foreign_keys = ON" + (db.configuration.readonly ? ""
                : "; PRAGMA synchronous = NORMAL; PRAGMA journal_size_limit = 0")
            let code = sqlite3_exec(db.sqliteConnection, pragmas, nil, nil, nil)
            guard code == SQLITE_OK else {
                throw DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(db.sqliteConnection)))
            }
            if !db.configuration.readonly {
                // Persistent WAL keeps -wal and -shm in place after the writer exits, so that
                // a reader who may not write the directory (a --group member) can still open it.
                var persist: CInt = 1
                let code = sqlite3_file_control(db.sqliteConnection, nil, SQLITE_FCNTL_PERSIST_WAL, &persist)
                guard code == SQLITE_OK else { throw DatabaseError(resultCode: ResultCode(rawValue: code)) }
                // Closing does not checkpoint: `deinit` decides (see `trimWAL`).
                _ = cld_sqlite_keep_wal_on_close(UnsafeMutableRawPointer(db.sqliteConnection))
            }
        }
        // Root opens no link planted by another user (see StoreAccess).
        let openPath = geteuid() == 0 ? try StoreAccess.rootOpenPath(path, create: access == .readWrite && !exists) : path
        do {
            queue = try Self.connect(openPath, configuration: config, readOnly: access == .readOnly)
            // A store not created yet (no file, or an empty one) is owner-only until the
            // administrator decides otherwise: command lines can hold secrets. Set on the still
            // empty file before anything is written (SQLite gives its journals the file's mode),
            // not with umask(077), which is the whole process's and reached other threads'
            // files meanwhile (a test's directories, in `swift test`).
            if access == .readWrite && (!exists || start?.isEmpty == true) { chmod(openPath, 0o600) }
            if openPath != path || geteuid() == 0 { try StoreAccess.confirmNotLink(openPath, reported: path) }
            let inWAL = start.map(Self.headerSaysWAL) ?? false
            try queue.writeWithoutTransaction { db in
                try Self.checkSchema(db, path: path, migrate: access == .readWrite, inWAL: inWAL, lockTimeout: lockTimeout)
            }
            openedPath = openPath
            verified = true
        } catch let error as DatabaseError where error.resultCode == .SQLITE_CANTOPEN && access == .readWrite && exists
                    && Glibc.access(path, W_OK) != 0 {
            // On read-only media SQLite cannot create the log beside a store that has none,
            // and says only that it cannot open the file.
            throw StoreError.readOnly(path: path)
        } catch {
            throw StoreError.from(error, path: path, lockTimeout: lockTimeout)
        }
    }

    /// The connection to the file at `openPath`. A store copied alone onto read-only media
    /// (its log checkpointed away) is read as immutable: SQLite cannot create the shared-memory
    /// file a WAL store is read through there, and with no log there is nothing but the file,
    /// which nobody can change on such media.
    private static func connect(_ openPath: String, configuration: Configuration, readOnly: Bool) throws -> DatabaseQueue {
        let logless = readOnly && !FileManager.default.fileExists(atPath: openPath + "-wal")
        do {
            let queue = try DatabaseQueue(path: openPath, configuration: configuration)
            if logless { try queue.read { db in _ = try db.tableExists("schema_migration") } }  // the first read needs the -shm
            return queue
        } catch let error as DatabaseError where logless && error.resultCode == .SQLITE_CANTOPEN {
            return try DatabaseQueue(path: immutableURI(openPath), configuration: configuration)
        }
    }

    /// SQLite's process-wide settings (CLinuxDiag's `cld_sqlite_configure`), made once. They
    /// take effect only before SQLite's first use: in portaudit, this store's first connection;
    /// in a process that used SQLite before (a test opening its own queue), they change nothing.
    static let configured: Void = cld_sqlite_configure()

    /// The SQLite this binary runs, version and source id, for `--version`: where it is linked
    /// in (README), a security update of the system's SQLite reaches it only with a rebuild.
    public static var sqliteVersion: String { "\(String(cString: sqlite3_libversion())) (\(String(cString: sqlite3_sourceid())))" }

    /// `path` as an SQLite URI filename that opens it immutable (no locks, no -shm).
    static func immutableURI(_ path: String) -> String {
        var escaped = "file:"
        for byte in path.utf8 {
            switch byte {
            case UInt8(ascii: "%"), UInt8(ascii: "?"), UInt8(ascii: "#"): escaped += "%" + String(byte, radix: 16, uppercase: true)
            default: escaped.unicodeScalars.append(Unicode.Scalar(byte))
            }
        }
        return escaped + "?immutable=1"
    }

    /// Whether the file was found to be a store this binary can write: nothing else is checkpointed.
    private var verified = false
    /// The file SQLite opened (root resolves the path it was given; see StoreAccess).
    private var openedPath = ""

    /// The WAL, in frames of SQLite's default 4 KiB page (portaudit's stores keep it), past
    /// which closing checkpoints it. Counted from the file's size without asking SQLite the
    /// page size, a statement at the end of every run; a store with larger pages is
    /// checkpointed after fewer frames, which are as many bytes for a new process to read.
    static let walCheckpointPages = 64

    deinit { trimWAL() }

    /// Commits are not synced (synchronous NORMAL, which WAL keeps atomic): an unchanged
    /// snapshot costs no fsync. A write that must survive a power cut (a change; anything
    /// but an unchanged snapshot) syncs the WAL it was just appended to, which is what
    /// synchronous FULL would do at commit; SQLite refuses to change that level inside the
    /// transaction, where the writer learns whether anything changed.
    private func syncWAL() {
        let fd = open(openedPath + "-wal", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        _ = fdatasync(fd)
        close(fd)
    }

    /// The size of the store and its log. Through a link, the log is beside the file it
    /// leads to, as SQLite names it.
    func fileBytes() -> Int64 {
        let file = ProcFiles.realPath(path) ?? path
        return [file, file + "-wal"].reduce(Int64(0)) { total, file in
            var info = stat()
            return total + (stat(file, &info) == 0 ? Int64(info.st_size) : 0)
        }
    }

    /// Copies the WAL into the database and cuts it to nothing (two fsyncs) once it has grown
    /// past `walCheckpointPages`; below that it is left for the next run. Each new process
    /// rebuilds the WAL index by reading every frame, and nothing counts as checkpointed after
    /// that rebuild, so a WAL that is never truncated grows and makes every later run slower.
    /// Never waits: with a reader in the way it is left for a later run.
    public func trimWAL() {
        guard verified, !queue.configuration.readonly else { return }
        var wal = stat()
        // The log: a 32-byte header, then frames of a 24-byte header and the page.
        guard stat(openedPath + "-wal", &wal) == 0, (Int(wal.st_size) - 32) / (4096 + 24) > Self.walCheckpointPages else { return }
        _ = try? queue.writeWithoutTransaction { db in
            sqlite3_busy_timeout(db.sqliteConnection, 0)
            try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)")
        }
    }

    /// Refuses a store SQLite finds damaged (PRAGMA quick_check, every page read once), for
    /// the rare commands that rewrite much of it: a damaged page that a snapshot never
    /// touches would otherwise be carried along silently. A snapshot does not pay for this.
    static func requireIntact(_ db: Database) throws {
        let complaints = try String.fetchAll(db, sql: "PRAGMA quick_check(3)")
        guard complaints != ["ok"] else { return }
        // One line: SQLite's complaints come with line breaks and a "*** in database main ***" heading.
        let lines = complaints.flatMap { $0.split(separator: "\n") }.filter { !$0.hasPrefix("***") }
        throw DatabaseError(resultCode: .SQLITE_CORRUPT, message: lines.joined(separator: "; "))  // read as `damaged`
    }

    static let sqliteHeader = Array("SQLite format 3\0".utf8)

    /// Whether a file's first bytes say it is in WAL mode: its write and read format versions
    /// (bytes 18 and 19) are 2, as SQLite sets them when the mode is switched.
    static func headerSaysWAL(_ start: [UInt8]) -> Bool {
        start.count >= 20 && start.starts(with: sqliteHeader) && start[18] == 2 && start[19] == 2
    }

    /// The first bytes of an existing store file (empty: a store not created yet), read once
    /// before SQLite opens it: SQLite would take a file with a damaged header, find its pages
    /// in the log and checkpoint them over it on closing, writing to a store it then reports
    /// "not a database". Nil when it cannot be read here or is no regular file; SQLite then says why.
    private static func fileStart(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        var bytes = [UInt8](repeating: 0, count: 20)  // to the file format versions
        let count = pread(fd, &bytes, bytes.count, 0)
        return count < 0 ? nil : Array(bytes.prefix(count))
    }

    /// Copies the whole log into the database and cuts it to nothing, waiting for readers as
    /// long as any write would: the log still holds the frames written before the last
    /// change (old command lines among them) until it is cut.
    func eraseWAL() throws {
        do {
            let busy = try queue.writeWithoutTransaction { db in
                try Row.fetchOne(db, sql: "PRAGMA wal_checkpoint(TRUNCATE)").map { $0[0] as Int } ?? 0
            }
            if busy != 0 { throw StoreError.logInUse(path: path) }
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError.from(error, path: path, lockTimeout: lockTimeout)
        }
    }

    private static func createDirectory(for path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        guard !directory.isEmpty, !FileManager.default.fileExists(atPath: directory) else { return }
        // One mkdir per missing level, for the system's own reason when one fails ("Not a
        // directory"); FileManager reported only "The operation could not be completed".
        var level = directory.hasPrefix("/") ? "" : "."
        for component in directory.split(separator: "/") {
            level += "/" + component
            if mkdir(level, 0o700) != 0 && errno != EEXIST {
                throw StoreError.cannotOpen(path: path, detail: "cannot create \(directory): \(ProcFiles.errorDescription(errno))")
            }
        }
    }

    /// Refuses a store newer than this binary or one that is not portaudit's, and applies
    /// pending migrations when allowed.
    private static func checkSchema(_ db: Database, path: String, migrate: Bool, inWAL: Bool, lockTimeout: Double) throws {
        let known = Set(Schema.migrations.map(\.name))
        // A store of this very schema, as every cron run finds it, in one statement instead of
        // four. Anything else (no ledger, another schema) takes the full check below.
        let ledger: [String]?
        do {
            ledger = try String.fetchAll(db, sql: "SELECT name FROM schema_migration")
        } catch let error as DatabaseError where error.resultCode == .SQLITE_ERROR {  // no such table
            ledger = nil
        }
        if let ledger, ledger.count == known.count, Set(ledger) == known, inWAL || !migrate { return }
        let tables = try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'")
        if !tables.isEmpty && !tables.contains("schema_migration") { throw StoreError.notAStore(path: path) }
        // An empty file is a store another process has just created and not yet migrated.
        if tables.isEmpty && !migrate { throw StoreError.missing(path: path) }
        let applied = try Schema.applied(db)
        let unknown = applied.filter { !known.contains($0) }
        if !unknown.isEmpty { throw StoreError.newerSchema(path: path, unknown: unknown) }
        if applied.count < known.count {
            guard migrate else {
                throw StoreError.cannotOpen(path: path, detail: "its schema is older than this portaudit; run `portaudit snapshot` once to upgrade it")
            }
            try Schema.migrate(db)
        }
        // Only once the file is known to be ours: the journal mode is written into its header.
        if migrate { try enableWAL(db, lockTimeout: lockTimeout) }
    }

    /// Switches a new store to WAL. Switching needs every other connection to the file
    /// gone, and SQLite answers SQLITE_BUSY at once instead of waiting (5 of 1,100 runs,
    /// twenty creating one store together, failed so): the wait is here, up to the lock timeout.
    private static func enableWAL(_ db: Database, lockTimeout: Double) throws {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: .milliseconds(Int64(lockTimeout * 1000)))
        while true {
            do {
                _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
                return
            } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY && clock.now < deadline {
                usleep(10_000)
            }
        }
    }

    /// Names of the migrations recorded in the store, in order.
    public func appliedMigrations() throws -> [String] {
        try read { db in try Schema.applied(db) }
    }

    func read<T>(_ body: (Database) throws -> T) throws -> T {
        do { return try queue.read(body) } catch { throw StoreError.from(error, path: path, lockTimeout: lockTimeout) }
    }

    /// As `read`, in a DEFERRED transaction but without GRDB's guard around it (`query_only`
    /// set and reset, two more statements compiled cold in a new process): for the snapshot's
    /// reads of the known holders, which a small snapshot waits for (50 sockets: 6.78 → 6.26
    /// and 6.27 → 5.86 ms, 300 interleaved runs each).
    func readUnguarded<T>(_ body: (Database) throws -> T) throws -> T {
        do {
            return try queue.inDatabase { db in try Self.transaction(.deferred, in: db, body) }
        } catch { throw StoreError.from(error, path: path, lockTimeout: lockTimeout) }
    }

    /// `body`'s result, run in one transaction of `kind` that it commits.
    private static func transaction<T>(_ kind: Database.TransactionKind, in db: Database, _ body: (Database) throws -> T) throws -> T {
        var result: T?
        try db.inTransaction(kind) {
            result = try body(db)
            return .commit
        }
        return result!
    }

    /// Runs `body` in one IMMEDIATE transaction: the write lock is taken before anything is
    /// read, so two overlapping snapshots queue on the busy timeout instead of deadlocking.
    /// `durable` says whether what was written must reach the disk now (see `syncWAL`).
    func write<T>(durable: (T) -> Bool = { _ in true }, _ body: (Database) throws -> T) throws -> T {
        do {
            let written = try queue.writeWithoutTransaction { db in try Self.transaction(.immediate, in: db, body) }
            if durable(written) { syncWAL() }
            return written
        } catch {
            throw StoreError.from(error, path: path, lockTimeout: lockTimeout)
        }
    }
}
