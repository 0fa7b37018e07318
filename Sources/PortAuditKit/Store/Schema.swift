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

    /// Applies each pending migration in its own IMMEDIATE transaction, re-checking the
    /// ledger inside it, so that two processes migrating a new store at once cannot both
    /// apply the same file.
    static func migrate(_ db: Database) throws {
        for migration in migrations {
            try db.inTransaction(.immediate) {
                try db.execute(sql: createLedger)
                let done = try Bool.fetchOne(db, sql: "SELECT 1 FROM schema_migration WHERE name = ?",
                                             arguments: [migration.name]) ?? false
                if !done {
                    try db.execute(sql: migration.sql)
                    try db.execute(sql: "INSERT INTO schema_migration (name, applied_at) VALUES (?, ?)",
                                   arguments: [migration.name, Timestamp.milliseconds(.now)])
                }
                return .commit
            }
        }
    }
}
