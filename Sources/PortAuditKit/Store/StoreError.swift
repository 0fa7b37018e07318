import Foundation
import GRDB

/// Why the store could not be used. Each reads as one line for the person at the terminal.
public enum StoreError: Error, CustomStringConvertible, Equatable {
    case missing(path: String)
    case newerSchema(path: String, unknown: [String])
    case notAStore(path: String)
    case damaged(path: String, detail: String)
    case locked(path: String, seconds: Double)
    case readOnly(path: String)
    case full(path: String)
    case cannotOpen(path: String, detail: String)
    case logInUse(path: String)
    /// A snapshot that started later was stored while this one was collecting.
    case superseded(by: Int64, startedAt: Date)

    public var description: String {
        switch self {
        case .missing(let path):
            "no store at \(path): run `portaudit snapshot` first, or point --db / PORTAUDIT_DB at one"
        case .newerSchema(let path, let unknown):
            "store \(path) was written by a newer portaudit (unknown migration \(unknown.joined(separator: ", "))); upgrade portaudit — the store was left unchanged"
        case .notAStore(let path):
            "\(path) is an SQLite database but not a portaudit store; refusing to touch it"
        case .damaged(let path, let detail):
            "store \(path) is damaged or not a database (\(detail)); it was left unchanged"
        case .locked(let path, let seconds):
            "store \(path) is locked by another writer; gave up after \(Self.format(seconds)) s (see --lock-timeout)"
        case .readOnly(let path):
            "store \(path) is read-only here: cannot write to it or to its directory"
        case .full(let path):
            "no space left to write store \(path); nothing was changed"
        case .cannotOpen(let path, let detail):
            "cannot open store \(path): \(detail)"
        case .logInUse(let path):
            "store \(path): the command lines were rewritten, but a query still reading the store keeps the old text in its log; run the command again once it ends"
        case .superseded(let id, let startedAt):
            "snapshot not stored: snapshot \(id), which started after this one (at \(Timestamp.iso(startedAt))), was stored while this one was collecting; storing this one after it would put the history out of time order"
        }
    }

    private static func format(_ seconds: Double) -> String {
        seconds == seconds.rounded() ? String(Int(seconds)) : String(seconds)
    }

    /// Translates SQLite's codes into what they mean for a store.
    static func from(_ error: Error, path: String, lockTimeout: Double) -> Error {
        guard let error = error as? DatabaseError else { return error }
        switch error.resultCode {
        case .SQLITE_BUSY, .SQLITE_LOCKED: return StoreError.locked(path: path, seconds: lockTimeout)
        case .SQLITE_NOTADB, .SQLITE_CORRUPT: return StoreError.damaged(path: path, detail: error.message ?? "\(error.resultCode)")
        case .SQLITE_READONLY: return StoreError.readOnly(path: path)
        case .SQLITE_FULL: return StoreError.full(path: path)
        case .SQLITE_CANTOPEN, .SQLITE_PERM, .SQLITE_AUTH, .SQLITE_IOERR:
            return StoreError.cannotOpen(path: path, detail: error.message ?? "\(error.resultCode)")
        default: return error
        }
    }
}
