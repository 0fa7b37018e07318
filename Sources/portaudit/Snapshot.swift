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

    func run() throws {
        let summary = try store.open(.readWrite).snapshot(from: sourceOptions.source)
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
