import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where the store lives when no --db is given.
public enum StoreLocation {
    public static func defaultPath(environment: [String: String] = variables(),
                                   isRoot: Bool = geteuid() == 0) -> String {
        if let explicit = environment["PORTAUDIT_DB"], !explicit.isEmpty { return explicit }
        if isRoot { return "/var/lib/portaudit/portaudit.db" }
        if let state = environment["XDG_STATE_HOME"], state.hasPrefix("/") {
            return state + "/portaudit/portaudit.db"
        }
        let home = environment["HOME"] ?? NSHomeDirectory()
        return home + "/.local/state/portaudit/portaudit.db"
    }

    /// The variables `defaultPath` reads, without building the whole environment (ProcessInfo
    /// does, on every cron run).
    public static func variables() -> [String: String] {
        var found: [String: String] = [:]
        for name in ["PORTAUDIT_DB", "XDG_STATE_HOME", "HOME"] {
            if let value = getenv(name) { found[name] = String(cString: value) }
        }
        return found
    }
}
