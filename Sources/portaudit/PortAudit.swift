import ArgumentParser
import Foundation
import PortAuditKit

@main
struct PortAudit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "portaudit",
        abstract: "Keep the history of every port this machine listens on, and answer from it.",
        discussion: """
            `portaudit snapshot` (run by cron) records the listening TCP and UDP sockets and the \
            processes holding them; `portaudit history PORT` tells since when a port listens and who held it; \
            changes, ports, process and usage answer the other questions, and sql anything else.
            """,
        version: "0.1.0, SQLite \(Store.sqliteVersion)",
        subcommands: [Snapshot.self, Now.self, History.self, Changes.self, Ports.self, ProcessCommand.self, Usage.self, SQL.self,
                      Status.self, Prune.self, Config.self, Check.self, Baseline.self, Schedule.self, Watch.self]
    )

    /// Like ArgumentParser's own main, but an error is one line on stderr, without the
    /// usage text: scripts and cron mail read the first line only.
    static func main() {
        do {
            if let fast = FastSnapshotArguments.parse(CommandLine.arguments.dropFirst()) {
                try Snapshot.perform(storePath: fast.storePath, lockTimeout: fast.lockTimeout, source: fast.source,
                                     fullWalk: fast.fullWalk, quiet: fast.quiet)
            }
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            if code == .success { exit(withError: error) }  // --help, --version
            let message = message(for: error).trimmingCharacters(in: .whitespacesAndNewlines)
            if !message.isEmpty {
                FileHandle.standardError.write(Data("portaudit: \(message)\n".utf8))
            }
            Foundation.exit(code.rawValue)
        }
    }
}
