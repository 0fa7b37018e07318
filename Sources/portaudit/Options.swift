import ArgumentParser
import Foundation
import PortAuditKit

/// Where the store is and how long to wait for it.
struct StoreOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The store file. Default: $PORTAUDIT_DB, else /var/lib/portaudit/portaudit.db for root, else $XDG_STATE_HOME/portaudit/portaudit.db.", valueName: "path"))
    var db: String?

    @Option(name: .long, help: ArgumentHelp("Seconds to wait for another process that holds the store's write lock.", valueName: "seconds"))
    var lockTimeout: Double = Self.defaultLockTimeout

    static let defaultLockTimeout: Double = 30

    var path: String { db ?? StoreLocation.defaultPath() }

    func open(_ access: Store.Access) throws -> Store {
        try Store(path: path, access: access, lockTimeout: lockTimeout)
    }

    func validate() throws {
        guard lockTimeout >= 0, lockTimeout.isFinite else { throw ValidationError("--lock-timeout must be a number of seconds, 0 or more") }
        if let db, db.isEmpty { throw ValidationError("--db needs a path") }
    }
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json
}

struct OutputOptions: ParsableArguments {
    @Option(name: .long, help: "Output format: table or json.")
    var format: OutputFormat = .table

    @Flag(name: .long, help: "Show times in UTC instead of the local time zone.")
    var utc = false

    @Flag(name: .long, help: "Do not cut wide columns to the terminal width.")
    var wide = false

    var style: TextStyle { TextStyle(width: wide ? nil : 80, utc: utc) }
}

/// How sockets are enumerated; hidden, for tests and diagnosis.
struct SourceOptions: ParsableArguments {
    @Option(name: .long, help: .hidden)
    var enumerate: LinuxListenerSource.Enumeration = .auto

    var source: LinuxListenerSource { LinuxListenerSource(enumeration: enumerate) }
}

extension LinuxListenerSource.Enumeration: ExpressibleByArgument {}

extension PortSpec: ExpressibleByArgument {
    public init?(argument: String) {
        try? self.init(parsing: argument)
    }
}

func emit(_ text: String) {
    print(text)
}
