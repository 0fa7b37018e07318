import GRDB

/// Settings kept in the store, so that every run (cron's included) honours them.
extension Store {
    static let commandLineSetting = "cmdline"

    /// What the store keeps of command lines; `.full` unless set.
    public func commandLinePolicy() throws -> CommandLinePolicy {
        try read { db in try Self.commandLinePolicy(db) }
    }

    static let settingSQL = "SELECT value FROM setting WHERE name = ?"

    static func commandLinePolicy(_ db: Database) throws -> CommandLinePolicy {
        let value = try String.fetchOne(db.cachedStatement(sql: settingSQL), arguments: [commandLineSetting])
        return value.flatMap(CommandLinePolicy.init(rawValue:)) ?? .full
    }

    /// Records the policy and applies it to the command lines already stored: choosing
    /// `redact` or `none` must not leave yesterday's secrets behind. Returns how many
    /// stored command lines changed.
    @discardableResult
    public func setCommandLinePolicy(_ policy: CommandLinePolicy) throws -> Int {
        let changed = try write { db in
            try Self.requireIntact(db)
            try db.execute(sql: "INSERT INTO setting (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                           arguments: [Self.commandLineSetting, policy.rawValue])
            guard policy != .full else { return 0 }
            // Overwrite the old text in the file instead of leaving it in free space.
            try db.execute(sql: "PRAGMA secure_delete = ON")
            var changed = 0
            let update = try db.makeStatement(sql: "UPDATE process SET cmdline = ? WHERE id = ?")
            for row in try Row.fetchAll(db, sql: "SELECT id, cmdline FROM process WHERE cmdline IS NOT NULL") {
                let old: String = row["cmdline"]
                let new = policy.apply(old)
                if new != old {
                    try update.execute(arguments: [new, row["id"] as Int64])
                    changed += 1
                }
            }
            return changed
        }
        if policy != .full { try eraseWAL() }
        return changed
    }
}
