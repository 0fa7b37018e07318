import Foundation
import GRDBSQLite

/// Why a query given to `portaudit sql` was not run.
public struct SQLRefusal: Error, CustomStringConvertible, Equatable {
    public var description: String
}

extension Store {
    /// Runs one statement of the user's SQL against the store and returns its rows; anything
    /// that could change a file is refused before it runs, with the store left unchanged.
    ///
    /// Three locks, each enough alone against a different mistake: the connection is
    /// opened SQLITE_OPEN_READONLY, an authorizer allows only reading (and read-only
    /// PRAGMAs), and a statement SQLite does not call read-only is refused. ATTACH is also
    /// limited to zero databases. GRDB is not used here because it installs its own
    /// authorizer on its connections.
    public func readOnlyQuery(_ sql: String) throws -> RecordTable {
        try ReadOnlyConnection(path: path, timeout: lockTimeout).query(sql)
    }
}

private final class Guard {
    var refusal: String?
}

private final class ReadOnlyConnection {
    let handle: OpaquePointer
    let path: String
    let timeout: Double
    let guardBox = Guard()

    init(path: String, timeout: Double) throws {
        self.path = path
        self.timeout = timeout
        Store.configured
        var db: OpaquePointer?
        let flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX
        var code = sqlite3_open_v2(path, &db, flags, nil)
        // A store copied alone onto read-only media is read as immutable, as `Store` does.
        if code == SQLITE_OK, !FileManager.default.fileExists(atPath: path + "-wal"),
           sqlite3_exec(db, "SELECT 1 FROM sqlite_master LIMIT 1", nil, nil, nil) & 0xff == SQLITE_CANTOPEN {
            sqlite3_close(db)
            db = nil
            code = sqlite3_open_v2(Store.immutableURI(path), &db, flags | SQLITE_OPEN_URI, nil)
        }
        guard code == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "error \(code)"
            sqlite3_close(db)
            throw StoreError.cannotOpen(path: path, detail: message)
        }
        handle = db
        sqlite3_busy_timeout(db, Int32(min(Double(Int32.max), max(0, timeout * 1000))))
        sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0)
        sqlite3_set_authorizer(db, { context, action, first, second, _, _ in
            let box = Unmanaged<Guard>.fromOpaque(context!).takeUnretainedValue()
            if let refusal = ReadOnlyConnection.refusal(action: action, first: first.map { String(cString: $0) },
                                                        second: second.map { String(cString: $0) }) {
                if box.refusal == nil { box.refusal = refusal }
                return SQLITE_DENY
            }
            return SQLITE_OK
        }, Unmanaged.passUnretained(guardBox).toOpaque())
    }

    deinit { sqlite3_close_v2(handle) }

    /// PRAGMAs that only report, allowed without an argument.
    static let reportingPragmas: Set<String> = [
        "table_info", "table_xinfo", "index_list", "index_info", "index_xinfo", "foreign_key_list",
        "database_list", "collation_list", "function_list", "module_list", "pragma_list", "compile_options",
        "user_version", "schema_version", "application_id", "page_count", "page_size", "freelist_count",
        "encoding", "journal_mode", "data_version", "quick_check", "integrity_check",
    ]
    /// Of those, the ones whose argument names a table or index instead of setting a value.
    static let pragmasTakingAName: Set<String> = [
        "table_info", "table_xinfo", "index_list", "index_info", "index_xinfo", "foreign_key_list",
    ]

    /// Nil when the action only reads; otherwise what is refused, for the error line.
    static func refusal(action: Int32, first: String?, second: String?) -> String? {
        switch action {
        case SQLITE_FUNCTION where second?.lowercased() == "fts3_tokenizer":
            // It returns a pointer into this binary (the address randomisation hides) and, with
            // two arguments, registers one.
            return "fts3_tokenizer()"
        case SQLITE_SELECT, SQLITE_READ, SQLITE_FUNCTION, SQLITE_RECURSIVE:
            return nil
        case SQLITE_PRAGMA:
            let name = (first ?? "").lowercased()
            if reportingPragmas.contains(name) && (second == nil || pragmasTakingAName.contains(name)) { return nil }
            return second.map { "PRAGMA \(name) = \($0)" } ?? "PRAGMA \(name)"
        case SQLITE_UPDATE where first == "sqlite_master":
            // SQLite asks this, column by column, on a connection's first use of each
            // eponymous virtual table (json_each, json_tree, pragma_*, dbstat), and writes
            // nothing. A user's UPDATE of the schema table fails to compile before it is asked
            // ("may not be modified"; writable_schema is refused above), and would meet the
            // other two locks.
            return nil
        case SQLITE_INSERT: return "INSERT into \(first ?? "?")"
        case SQLITE_UPDATE: return "UPDATE of \(first ?? "?")"
        case SQLITE_DELETE: return "DELETE from \(first ?? "?")"
        case SQLITE_ATTACH: return "ATTACH"
        case SQLITE_DETACH: return "DETACH"
        case SQLITE_TRANSACTION: return "\(first ?? "BEGIN") (transactions)"
        case SQLITE_SAVEPOINT: return "SAVEPOINT"
        case SQLITE_ALTER_TABLE: return "ALTER TABLE"
        case SQLITE_REINDEX: return "REINDEX"
        case SQLITE_ANALYZE: return "ANALYZE"
        case SQLITE_DROP_TABLE, SQLITE_DROP_TEMP_TABLE, SQLITE_DROP_VIEW, SQLITE_DROP_TEMP_VIEW,
             SQLITE_DROP_INDEX, SQLITE_DROP_TEMP_INDEX, SQLITE_DROP_TRIGGER, SQLITE_DROP_TEMP_TRIGGER,
             SQLITE_DROP_VTABLE:
            return "DROP \(first ?? "")".trimmingCharacters(in: .whitespaces)
        case SQLITE_CREATE_TABLE, SQLITE_CREATE_TEMP_TABLE, SQLITE_CREATE_VIEW, SQLITE_CREATE_TEMP_VIEW,
             SQLITE_CREATE_INDEX, SQLITE_CREATE_TEMP_INDEX, SQLITE_CREATE_TRIGGER, SQLITE_CREATE_TEMP_TRIGGER,
             SQLITE_CREATE_VTABLE:
            return "CREATE \(first ?? "")".trimmingCharacters(in: .whitespaces)
        default:
            return "this kind of statement (authorizer action \(action))"
        }
    }

    private func refused(_ what: String) -> SQLRefusal {
        SQLRefusal(description: "sql is read-only: \(what) is refused; the store was not changed")
    }

    private var message: String { String(cString: sqlite3_errmsg(handle)) }

    func query(_ sql: String) throws -> RecordTable {
        let trimmed = sql.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw SQLRefusal(description: "sql needs a query, e.g. portaudit sql \"SELECT * FROM current_listeners\"") }
        let utf8 = Array(sql.utf8CString)
        return try utf8.withUnsafeBufferPointer { buffer -> RecordTable in
            var statement: OpaquePointer?
            var tail: UnsafePointer<CChar>?
            let code = sqlite3_prepare_v2(handle, buffer.baseAddress, Int32(buffer.count), &statement, &tail)
            defer { sqlite3_finalize(statement) }
            if let refusal = guardBox.refusal { throw refused(refusal) }
            guard code == SQLITE_OK else { throw SQLRefusal(description: "sql: \(message)") }
            guard let statement else { throw SQLRefusal(description: "sql needs a query, not only comments") }
            guard sqlite3_stmt_readonly(statement) != 0 else { throw refused("a statement that writes") }
            if let tail, tail.pointee != 0 {
                var next: OpaquePointer?
                let nextCode = sqlite3_prepare_v2(handle, tail, -1, &next, nil)
                defer { sqlite3_finalize(next) }
                if let refusal = guardBox.refusal { throw refused(refusal) }
                if nextCode != SQLITE_OK || next != nil {
                    throw SQLRefusal(description: "sql runs one statement at a time; nothing was run")
                }
            }
            return try rows(of: statement)
        }
    }

    private func rows(of statement: OpaquePointer) throws -> RecordTable {
        let count = Int(sqlite3_column_count(statement))
        var fields: [String] = []
        for i in 0..<count {
            let base = sqlite3_column_name(statement, Int32(i)).map { String(cString: $0) } ?? "column\(i + 1)"
            var name = base
            var n = 2
            while fields.contains(name) { name = "\(base)_\(n)"; n += 1 }
            fields.append(name)
        }
        var table = RecordTable(fields: fields)
        while true {
            let step = sqlite3_step(statement)
            if step == SQLITE_DONE { break }
            guard step == SQLITE_ROW else {
                if step == SQLITE_BUSY { throw StoreError.locked(path: path, seconds: timeout) }
                throw SQLRefusal(description: "sql: \(message)")
            }
            var row: [FieldValue] = []
            for i in 0..<Int32(count) {
                switch sqlite3_column_type(statement, i) {
                case SQLITE_INTEGER: row.append(.int(sqlite3_column_int64(statement, i)))
                case SQLITE_FLOAT: row.append(.double(sqlite3_column_double(statement, i)))
                case SQLITE_TEXT: row.append(.text(String(cString: sqlite3_column_text(statement, i))))
                case SQLITE_BLOB:
                    let length = Int(sqlite3_column_bytes(statement, i))
                    let bytes = sqlite3_column_blob(statement, i).map { UnsafeRawBufferPointer(start: $0, count: length) }
                    row.append(.text("x'" + (bytes.map { $0.map { String(format: "%02x", $0) }.joined() } ?? "") + "'"))
                default: row.append(.null)
                }
            }
            table.append(row)
        }
        return table
    }
}
