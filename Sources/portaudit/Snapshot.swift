import ArgumentParser
import Foundation
import PortAuditKit

struct Snapshot: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Record the listening sockets and their processes in the store (what cron runs).")

    @OptionGroup var store: StoreOptions
    @OptionGroup var sourceOptions: SourceOptions

    @Flag(name: .shortAndLong, help: "Print nothing on success.")
    var quiet = false

    @Flag(name: .long, help: "Mask secret-looking values in command lines before storing them (see `portaudit config cmdline`).")
    var redact = false

    @Flag(name: .long, help: "Store no command lines.")
    var noCmdline = false

    @Option(name: .long, help: ArgumentHelp("Let this group read the store (directory 0750, file 0640); otherwise owner only.", valueName: "group"))
    var group: String?

    /// Crash tests: say so on stderr once every row is written, wait this long, say so again, commit.
    @Option(name: .long, help: .hidden)
    var pauseBeforeCommit: Double?

    func run() throws {
        let policy: CommandLinePolicy = noCmdline ? .none : (redact ? .redact : .full)
        let opened = try store.open(.readWrite)
        let pause = pauseBeforeCommit.map { seconds in {
            FileHandle.standardError.write(Data("written, not committed\n".utf8))
            Thread.sleep(forTimeInterval: seconds)
            FileHandle.standardError.write(Data("committing\n".utf8))
        } }
        let summary = try opened.snapshot(from: sourceOptions.source, commandLines: policy, beforeCommit: pause)
        if let group { try opened.grantGroupRead(group: group) }
        guard !quiet else { return }
        var line = "snapshot \(summary.id): \(summary.listeners) listeners"
        if summary.namespaces > 1 { line += " in \(summary.namespaces) network namespaces" }
        line += " (\(summary.sockets) sockets"
        if summary.unattributed > 0 { line += ", \(summary.unattributed) without a readable holder" }
        line += "), \(summary.opened) opened, \(summary.closed) closed"
        if summary.changed > 0 { line += ", \(summary.changed) changed holders" }
        line += " since the previous snapshot; \(summary.durationMs) ms"
        print(line)
        for error in summary.errors {
            FileHandle.standardError.write(Data("note: \(error)\n".utf8))
        }
    }
}
