import ArgumentParser
import Foundation
import PortAuditKit

struct Snapshot: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot",
        abstract: "Record the listening sockets and their processes in the store (what cron runs).")

    @OptionGroup var store: StoreOptions
    @OptionGroup var sourceOptions: SourceOptions

    @Flag(name: .shortAndLong, help: "Print nothing on success.")
    var quiet = false

    @Flag(name: .long, help: "Mask secret-looking values in command lines before storing them (see `portaudit config cmdline`).")
    var redact = false

    @Flag(name: .long, help: "Store no command lines.")
    var noCmdline = false

    @Option(name: .long, help: ArgumentHelp("Let this group read the store (files 0640; the directory 0750 when it holds nothing but the store); otherwise owner only.", valueName: "group"))
    var group: String?

    @Flag(name: .long, help: "Read every process's descriptors, even where the holders the store knows could be confirmed instead.")
    var fullWalk = false

    /// Crash tests: say so on stderr once every row is written, wait this long, say so again, commit.
    @Option(name: .long, help: .hidden)
    var pauseBeforeCommit: Double?

    func run() throws {
        let pause = pauseBeforeCommit.map { seconds in {
            FileHandle.standardError.write(Data("written, not committed\n".utf8))
            Thread.sleep(forTimeInterval: seconds)
            FileHandle.standardError.write(Data("committing\n".utf8))
        } }
        try Self.perform(storePath: store.path, lockTimeout: store.lockTimeout, source: sourceOptions.source,
                         fullWalk: fullWalk, quiet: quiet,
                         commandLines: noCmdline ? .none : (redact ? .redact : .full), group: group, beforeCommit: pause)
    }

    /// Shared with the fast path that parses cron's plain command line without ArgumentParser.
    /// Ends the process once the snapshot is stored and reported (see `finish(after:)`).
    static func perform(storePath: String, lockTimeout: Double, source: LinuxListenerSource, fullWalk: Bool, quiet: Bool,
                        commandLines: CommandLinePolicy = .full, group: String? = nil,
                        beforeCommit: (() -> Void)? = nil) throws -> Never {
        let storeGroup = try group.map { try StoreGroup($0, for: storePath) }
        let (store, outcome) = try Store.snapshot(path: storePath, lockTimeout: lockTimeout, from: source,
                                                  policy: HolderCachePolicy(forceFullWalk: fullWalk),
                                                  commandLines: commandLines, beforeCommit: beforeCommit)
        let summary: SnapshotSummary?
        do {
            summary = try outcome.get()
        } catch {
            // Overlapping runs (a slow one and cron's next): the newer one already recorded the machine.
            guard case StoreError.superseded = error else { throw error }
            if !quiet { print(error) }
            summary = nil
        }
        let groupNote = try storeGroup.flatMap { try store.grantGroupRead($0) }
        if !quiet, let groupNote { FileHandle.standardError.write(Data("note: \(groupNote)\n".utf8)) }
        guard !quiet, let summary else { finish(after: store) }
        var line = "snapshot \(summary.id): \(summary.listeners) listeners"
        if summary.namespaces > 1 { line += " in \(summary.namespaces) network namespaces" }
        line += " (\(summary.sockets) sockets"
        if summary.unattributed > 0 { line += ", \(summary.unattributed) without a readable holder" }
        line += "), \(summary.opened) opened, \(summary.closed) closed"
        if summary.changed > 0 { line += ", \(summary.changed) changed holders" }
        line += " since the previous snapshot; \(summary.durationMs) ms"
        if !summary.fullWalk { line += " (known holders confirmed, no full walk)" }
        print(line)
        for error in summary.errors {
            FileHandle.standardError.write(Data("note: \(error)\n".utf8))
        }
        finish(after: store)
    }

    /// Exits without closing the store or running the exit handlers, which took 0.4 ms of a
    /// 50-socket snapshot's 9 (60 interleaved runs). Nothing is lost: the transaction is
    /// committed, and the log stays beside the store as it does after a close (persistent
    /// WAL); only the checkpoint that closing would decide on is made first.
    private static func finish(after store: Store) -> Never {
        store.trimWAL()
        fflush(nil)
        _exit(0)
    }
}

/// The command cron runs every minute, parsed without ArgumentParser: building its command
/// tree reflects every option of every subcommand (Mirror, dynamic casts), which cost more
/// than the whole snapshot of a quiet machine. Only plain, valid forms are taken here;
/// anything else (help, an unknown or malformed option) is left to ArgumentParser, so the
/// messages and the behaviour stay its own.
enum FastSnapshotArguments {
    static func parse(_ arguments: ArraySlice<String>) -> (storePath: String, lockTimeout: Double, source: LinuxListenerSource, fullWalk: Bool, quiet: Bool)? {
        guard arguments.first == "snapshot" else { return nil }
        var path: String?
        var lockTimeout = StoreOptions.defaultLockTimeout
        var enumeration = LinuxListenerSource.Enumeration.auto
        var fullWalk = false, quiet = false
        var rest = arguments.dropFirst()
        while let argument = rest.popFirst() {
            var name = argument
            var value: String?
            if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
                name = String(argument[..<equals])
                value = String(argument[argument.index(after: equals)...])
            }
            func takeValue() -> String? {
                if let value { return value }
                guard let next = rest.popFirst(), !next.hasPrefix("-") else { return nil }
                return next
            }
            switch name {
            case "--quiet" where value == nil, "-q" where value == nil: quiet = true
            case "--full-walk" where value == nil: fullWalk = true
            case "--db":
                guard let value = takeValue(), !value.isEmpty else { return nil }
                path = value
            case "--lock-timeout":
                guard let text = takeValue(), let seconds = Double(text), seconds >= 0, seconds.isFinite else { return nil }
                lockTimeout = seconds
            case "--enumerate":
                guard let text = takeValue(), let parsed = LinuxListenerSource.Enumeration(rawValue: text) else { return nil }
                enumeration = parsed
            default: return nil
            }
        }
        return (path ?? StoreLocation.defaultPath(), lockTimeout, LinuxListenerSource(enumeration: enumeration), fullWalk, quiet)
    }
}
