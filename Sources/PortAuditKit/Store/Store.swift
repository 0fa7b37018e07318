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
    let queue: DatabaseQueue

    /// Opens (and for `.readWrite`, creates and migrates) the store at `path`.
    public init(path: String, access: Access, lockTimeout: Double = 30) throws {
        self.path = path
        self.lockTimeout = lockTimeout
        if geteuid() == 0 { try StoreAccess.refuseForeignLink(path) }
        let exists = FileManager.default.fileExists(atPath: path)  // through root's own link
        if access == .readOnly && !exists { throw StoreError.missing(path: path) }
        if access == .readWrite && !exists { try Self.createDirectory(for: path) }

        var config = Configuration()
        config.readonly = access == .readOnly
        config.busyMode = .timeout(lockTimeout)
        config.label = "portaudit"
        config.prepareDatabase { db in
            // WAL keeps readers from blocking the writer; NORMAL is still atomic in WAL.
            if !db.configuration.readonly {
                try db.execute(sql: "PRAGMA synchronous = NORMAL")
                // The log is reused from its start after a checkpoint; cutting it to what was
                // just written leaves no stale tail (old command lines, pruned rows) behind.
                try db.execute(sql: "PRAGMA journal_size_limit = 0")
                // Persistent WAL keeps -wal and -shm in place after the writer exits, so that
                // a reader who may not write the directory (a --group member) can still open it.
                var persist: CInt = 1
                let code = sqlite3_file_control(db.sqliteConnection, nil, SQLITE_FCNTL_PERSIST_WAL, &persist)
                guard code == SQLITE_OK else { throw DatabaseError(resultCode: ResultCode(rawValue: code)) }
                // Closing leaves the WAL for the next run instead of checkpointing it (two fsyncs)
                // every time; SQLite still checkpoints at its auto-checkpoint size.
                _ = cld_sqlite_keep_wal_on_close(UnsafeMutableRawPointer(db.sqliteConnection))
            }
        }
        // Root opens no link planted by another user (see StoreAccess).
        let openPath = geteuid() == 0 ? try StoreAccess.rootOpenPath(path, create: access == .readWrite && !exists) : path
        do {
            if access == .readWrite && !exists {
                // Owner-only until the administrator decides otherwise: command lines can hold secrets.
                let old = umask(0o077)
                defer { umask(old) }
                queue = try DatabaseQueue(path: openPath, configuration: config)
            } else {
                queue = try DatabaseQueue(path: openPath, configuration: config)
            }
            if openPath != path || geteuid() == 0 { try StoreAccess.confirmNotLink(openPath, reported: path) }
            try queue.writeWithoutTransaction { db in try Self.checkSchema(db, path: path, migrate: access == .readWrite) }
        } catch {
            throw StoreError.from(error, path: path, lockTimeout: lockTimeout)
        }
    }

    private static func createDirectory(for path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        guard !directory.isEmpty, !FileManager.default.fileExists(atPath: directory) else { return }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw StoreError.cannotOpen(path: path, detail: "cannot create \(directory): \((error as NSError).localizedDescription)")
        }
    }

    /// Refuses a store newer than this binary or one that is not portaudit's, and applies
    /// pending migrations when allowed.
    private static func checkSchema(_ db: Database, path: String, migrate: Bool) throws {
        let tables = try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'")
        if !tables.isEmpty && !tables.contains("schema_migration") { throw StoreError.notAStore(path: path) }
        let known = Set(Schema.migrations.map(\.name))
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
        if migrate { try db.execute(sql: "PRAGMA journal_mode = WAL") }
    }

    /// Names of the migrations recorded in the store, in order.
    public func appliedMigrations() throws -> [String] {
        try read { db in try Schema.applied(db) }
    }

    func read<T>(_ body: (Database) throws -> T) throws -> T {
        do { return try queue.read(body) } catch { throw StoreError.from(error, path: path, lockTimeout: lockTimeout) }
    }

    /// Runs `body` in one IMMEDIATE transaction: the write lock is taken before anything is
    /// read, so two overlapping snapshots queue on the busy timeout instead of deadlocking.
    func write<T>(_ body: (Database) throws -> T) throws -> T {
        do {
            return try queue.writeWithoutTransaction { db in
                var result: T?
                try db.inTransaction(.immediate) {
                    result = try body(db)
                    return .commit
                }
                return result!
            }
        } catch {
            throw StoreError.from(error, path: path, lockTimeout: lockTimeout)
        }
    }
}
