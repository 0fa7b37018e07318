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

    func open(_ access: Store.Access, create: Bool = true) throws -> Store {
        try Store(path: path, access: access, lockTimeout: lockTimeout, create: create)
    }

    func validate() throws {
        guard lockTimeout >= 0, lockTimeout.isFinite else { throw ValidationError("--lock-timeout must be a number of seconds, 0 or more") }
        if let db, db.isEmpty { throw ValidationError("--db needs a path") }
    }
}

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json, jsonl, csv
}

enum ReportFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json
}

/// For commands that print one report rather than rows (status, prune, check): a table
/// for people or one JSON document for scripts.
struct ReportOptions: ParsableArguments {
    @Option(name: .long, help: "Output format: table or json.")
    var format: ReportFormat = .table

    @Flag(name: .long, help: "Show times in UTC instead of the local time zone.")
    var utc = false

    var style: TextStyle { TextStyle(width: 80, utc: utc) }
}

/// How every row-printing command writes: one format machinery for all of them.
struct OutputOptions: ParsableArguments {
    @Option(name: .long, help: "Output format: table, json (an array of rows; history: one document), jsonl (one row per line) or csv (with a header).")
    var format: OutputFormat = .table

    @Flag(name: .long, help: "Show times in UTC instead of the local time zone, and read times given without an offset as UTC.")
    var utc = false

    @Flag(name: .long, help: "Do not cut wide columns to 80 columns.")
    var wide = false

    var style: TextStyle { TextStyle(width: wide ? nil : 80, utc: utc) }

    /// The zone times are shown in, and read in when typed without an offset.
    var timeZone: TimeZone { utc ? TimeZone(identifier: "UTC")! : .current }

    /// Colour only for a person at a terminal, and never when NO_COLOR is set (no-color.org).
    var colour: Bool {
        isatty(STDOUT_FILENO) == 1 && (ProcessInfo.processInfo.environment["NO_COLOR"] ?? "").isEmpty
    }

    /// Prints rows in the chosen format; `empty` is the table's text when there are none.
    func emit(_ records: RecordTable, columns: [TableColumn], empty: String, footer: String? = nil, style: TextStyle? = nil) {
        switch format {
        case .table:
            if records.rows.isEmpty {
                print(empty)
            } else {
                print(records.renderTable(columns, style: style ?? self.style, colour: colour))
                if let footer { print(footer) }
            }
        case .json: print(RecordOutput.json(records))
        case .jsonl: if !records.rows.isEmpty { print(RecordOutput.jsonLines(records)) }
        case .csv: print(RecordOutput.csv(records))
        }
    }

    /// For tables that say "now" for what the latest snapshot saw: the style, and a footer
    /// for each host whose latest snapshot is too old for "now" (cron stopped), whose rows
    /// then show that snapshot's time.
    func asOfLatestSnapshot(_ store: Store, now: Date = Date()) throws -> (style: TextStyle, footer: String?) {
        var style = self.style
        let hosts = try store.latestSnapshots(now: now)
        let stale = hosts.filter { !$0.isCurrent }
        style.staleHosts = Set(stale.map(\.hostname))
        let lines = stale.map { host in
            let whose = hosts.count > 1 ? " of \(host.hostname)" : ""
            return "Listening means listening at the latest snapshot\(whose), \(style.time(host.time)), "
                + "\(DurationText.approximate(now.timeIntervalSince(host.time))) ago; none has been taken since."
        }
        return (style, lines.isEmpty ? nil : lines.joined(separator: "\n"))
    }

    /// Reads a time option; a bad one is one clear line.
    func time(_ text: String?, option: String, now: Date) throws -> Date? {
        guard let text else { return nil }
        do { return try TimeExpression.parse(text, now: now, timeZone: timeZone) } catch let error as TimeExpression.Invalid {
            throw ValidationError("\(option): \(error.description)")
        }
    }
}

/// --since and --until.
struct WindowOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("From this time on: 2026-11-26, 2026-11-26T10:05, 30m, 12h, 7d, 2w, today, yesterday.", valueName: "time"))
    var since: String?

    @Option(name: .long, help: ArgumentHelp("Up to this time (same forms as --since).", valueName: "time"))
    var until: String?

    func window(_ output: OutputOptions, now: Date = Date()) throws -> TimeWindow {
        let window = TimeWindow(since: try output.time(since, option: "--since", now: now),
                                until: try output.time(until, option: "--until", now: now))
        if let since = window.since, let until = window.until, since > until {
            throw ValidationError("--since \(self.since!) is after --until \(self.until!)")
        }
        return window
    }
}

/// A port option or argument read with the registry; a bad one is one clear line.
func parsePorts(_ text: String?) throws -> PortSpec? {
    guard let text else { return nil }
    do { return try PortSpec(parsing: text) } catch let error as PortSpec.Invalid {
        throw ValidationError(error.description)
    }
}

/// How sockets are enumerated; hidden, for tests and diagnosis.
struct SourceOptions: ParsableArguments {
    @Option(name: .long, help: .hidden)
    var enumerate: LinuxListenerSource.Enumeration = .auto

    /// Hidden: leaves out the count of established connections, to measure what it costs.
    @Flag(name: .long, help: .hidden)
    var noConnectionCount = false

    var source: LinuxListenerSource {
        var source = LinuxListenerSource(enumeration: enumerate)
        source.countsConnections = !noConnectionCount
        return source
    }
}

extension LinuxListenerSource.Enumeration: ExpressibleByArgument {}

/// `--netns host|all|ID`, shared by the commands that can look at one namespace.
struct NamespaceOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "Network namespaces: host (portaudit's own), all (default; other namespaces need root), or one by inode or /run/netns name.",
        valueName: "host|all|ID"))
    var netns: String = "all"

    var selection: NamespaceSelection {
        get throws {
            do { return try NamespaceSelection(parsing: netns) } catch let error as NamespaceSelection.Invalid {
                throw ValidationError(error.description)
            }
        }
    }

    func validate() throws { _ = try selection }
}

extension PortSpec: ExpressibleByArgument {
    public init?(argument: String) {
        try? self.init(parsing: argument)
    }
}

func emit(_ text: String) {
    print(text)
}
