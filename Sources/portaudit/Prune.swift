import ArgumentParser
import Foundation
import PortAuditKit

struct Prune: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Remove history older than a duration, keeping what is still true after it, and reclaim the space.",
        discussion: "A listener still listening at the cut keeps its true first-seen time and the snapshots that date it.")

    @Option(name: .long, help: ArgumentHelp("Remove history that ended more than this long ago: 180d, 12w, 36h.", valueName: "duration"))
    var olderThan: String

    @Flag(name: .long, help: "Report what would be removed; change nothing.")
    var dryRun = false

    @OptionGroup var store: StoreOptions
    @OptionGroup var output: ReportOptions

    func validate() throws {
        do { _ = try DurationText.seconds(olderThan) } catch { throw ValidationError("--older-than: \(error)") }
    }

    func run() throws {
        let cut = Date().addingTimeInterval(-Double(try DurationText.seconds(olderThan)))
        // A mistyped --db is no empty store to prune: saying "removed 0" would hide it.
        let report = try store.open(.readWrite, create: false).prune(before: cut, dryRun: dryRun)
        switch output.format {
        case .json: print(try JSONOutput.encode(report))
        case .table:
            let verb = dryRun ? "would remove" : "removed"
            print("""
                prune before \(Timestamp.human(report.cutBefore, utc: output.utc)): \(verb) \(report.snapshotsRemoved) snapshots, \
                \(report.intervalsRemoved) intervals, \(report.processesRemoved) processes, \(report.listenersRemoved) listeners; \
                kept \(report.snapshotsKeptBeforeCut) older snapshots that date listeners still seen after the cut
                """)
            if !dryRun {
                print("store size \(report.bytesBefore) → \(report.bytesAfter) bytes")
            }
            if let failure = report.reclaimFailure {
                FileHandle.standardError.write(Data("note: the history was removed, but the space was not reclaimed: \(failure)\n".utf8))
            }
        }
    }
}
