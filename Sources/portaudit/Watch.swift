import ArgumentParser
import Foundation
import PortAuditKit

struct Watch: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Check every interval in the foreground and record what changed (for a systemd service).",
        discussion: """
            A check that finds everything as before writes nothing; a change is written together \
            with the check just before it, so "appeared between A and B" stays one interval wide. \
            A heartbeat snapshot is written when nothing was written for --heartbeat. SIGTERM or \
            SIGINT stops it after the current check, with the last check written.
            """)

    @OptionGroup var store: StoreOptions
    @OptionGroup var sourceOptions: SourceOptions

    @Option(name: .long, help: ArgumentHelp("Time between checks: 200ms, 1s, 5m.", valueName: "duration"))
    var interval = "1s"

    @Option(name: .long, help: ArgumentHelp("Longest time without writing a snapshot, even when nothing changed.", valueName: "duration"))
    var heartbeat = "5m"

    @Flag(name: .shortAndLong, help: "Print nothing but errors.")
    var quiet = false

    func settings() throws -> Watcher<LinuxListenerSource>.Settings {
        do {
            let settings = Watcher<LinuxListenerSource>.Settings(interval: try DurationText.fractionalSeconds(interval),
                                                                 heartbeat: try DurationText.fractionalSeconds(heartbeat))
            guard settings.interval >= 0.05 else { throw ValidationError("--interval must be at least 50ms") }
            guard settings.heartbeat >= settings.interval else { throw ValidationError("--heartbeat must not be shorter than --interval") }
            return settings
        } catch let error as DurationText.Invalid {
            throw ValidationError(error.description)
        }
    }

    func validate() throws { _ = try settings() }

    func run() throws {
        let stop = try StopSignal()
        let watcher = Watcher(store: try store.open(.readWrite), source: sourceOptions.source, settings: try settings())
        let quiet = self.quiet
        let report = try watcher.run(until: stop) { summary, reason in
            guard !quiet, reason != .heartbeat, reason != .beforeChange else { return }
            var line = "snapshot \(summary.id) (\(reason.rawValue)): \(summary.listeners) listeners, "
            line += "\(summary.opened) opened, \(summary.closed) closed"
            if summary.changed > 0 { line += ", \(summary.changed) changed holders" }
            // Unbuffered: a service's journal should see each change as it happens.
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
        }
        if !quiet {
            print("watch stopped: \(report.checks) checks, \(report.snapshots) snapshots written, "
                  + String(format: "%.2f", report.cpuSeconds) + " s CPU")
        }
    }
}
