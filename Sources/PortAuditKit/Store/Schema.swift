import GRDB

/// The schema migrations this binary carries (generated from Migrations/ at build time),
/// and how they are applied.
public enum Schema {
    public static var migrations: [(name: String, sql: String)] { EmbeddedMigrations.all }

    static let createLedger = """
        CREATE TABLE IF NOT EXISTS schema_migration (
            name        TEXT PRIMARY KEY,   -- file name in Migrations/, without .sql
            applied_at  INTEGER NOT NULL    -- ms since epoch, UTC
        )
        """

    /// Names recorded in the store, in order; empty for a store with no ledger.
    static func applied(_ db: Database) throws -> [String] {
        guard try hasTable(db, "schema_migration") else { return [] }
        return try String.fetchAll(db, sql: "SELECT name FROM schema_migration ORDER BY name")
    }

    /// One look at sqlite_master. GRDB's `tableExists` loads and caches its whole schema
    /// introspection first, which on every short run (a cron snapshot) costs more than the question.
    static func hasTable(_ db: Database, _ name: String) throws -> Bool {
        try Bool.fetchOne(db, sql: "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", arguments: [name]) ?? false
    }

    /// Applies every pending migration in one IMMEDIATE transaction, re-checking the ledger
    /// inside it: two processes migrating a new store at once cannot both apply the same file,
    /// and a reader never sees a schema half way between two versions (an empty file, or
    /// the whole new schema).
    static func migrate(_ db: Database) throws {
        try db.inTransaction(.immediate) {
            try db.execute(sql: createLedger)
            let done = Set(try String.fetchAll(db, sql: "SELECT name FROM schema_migration"))
            let pending = migrations.filter { !done.contains($0.name) }
            for migration in pending {
                try db.execute(sql: migration.sql)
                try db.execute(sql: "INSERT INTO schema_migration (name, applied_at) VALUES (?, ?)",
                               arguments: [migration.name, Timestamp.milliseconds(.now)])
            }
            // A migration may change what the history means; the cache of it is read again.
            if !pending.isEmpty { try db.execute(sql: "DELETE FROM open_state") }
            return .commit
        }
    }
}
