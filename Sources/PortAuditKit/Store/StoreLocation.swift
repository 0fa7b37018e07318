import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where the store lives when no --db is given.
public enum StoreLocation {
    public static func defaultPath(environment: [String: String] = ProcessInfo.processInfo.environment,
                                   isRoot: Bool = geteuid() == 0) -> String {
        if let explicit = environment["PORTAUDIT_DB"], !explicit.isEmpty { return explicit }
        if isRoot { return "/var/lib/portaudit/portaudit.db" }
        if let state = environment["XDG_STATE_HOME"], state.hasPrefix("/") {
            return state + "/portaudit/portaudit.db"
        }
        let home = environment["HOME"] ?? NSHomeDirectory()
        return home + "/.local/state/portaudit/portaudit.db"
    }
}
