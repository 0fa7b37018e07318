import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where the store lives when no --db is given.
public enum StoreLocation {
    /// `lookup` reads one variable: getenv by default, without copying the whole environment
    /// (ProcessInfo does, on every cron run).
    public static func defaultPath(lookup: (String) -> String? = { getenv($0).map { String(cString: $0) } },
                                   isRoot: Bool = geteuid() == 0) -> String {
        if let explicit = lookup("PORTAUDIT_DB"), !explicit.isEmpty { return explicit }
        if isRoot { return "/var/lib/portaudit/portaudit.db" }
        if let state = lookup("XDG_STATE_HOME"), state.hasPrefix("/") {
            return state + "/portaudit/portaudit.db"
        }
        let home = lookup("HOME") ?? NSHomeDirectory()
        return home + "/.local/state/portaudit/portaudit.db"
    }
}
