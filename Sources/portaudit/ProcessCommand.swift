import ArgumentParser
import Foundation
import PortAuditKit

struct ProcessCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "process",
        abstract: "Every port a program has held over time, with the stretches it held each.",
        discussion: """
            NAME is the kernel's process name (nginx) or the file name or path of its executable; \
            a number is a pid (of any boot in the store).
            """)

    @Argument(help: "A process name, an executable, or a pid.")
    var process: String

    @OptionGroup var namespace: NamespaceOptions
    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let selector: ProcessSelector
        do { selector = try ProcessSelector(parsing: process) } catch let error as ProcessSelector.Invalid {
            throw ValidationError(error.description)
        }
        let opened = try store.open(.readOnly)
        let rows = try opened.processHistory(selector, netns: try namespace.selection)
        let (style, footer) = try output.asOfLatestSnapshot(opened)
        output.emit(rows, columns: Self.columns, empty: "no process matching '\(process)' has held a listening socket",
                    footer: footer, style: style)
    }

    static let columns: [TableColumn] = [
        TableColumn("pid", "PID", alignRight: true),
        TableColumn("process", "PROCESS"),
        TableColumn.namespacedEndpoint,
        TableColumn.time("first_seen", "FIRST SEEN"),
        TableColumn.time("last_seen", "LAST SEEN", orNowWhen: "listening"),
        TableColumn("cmdline", "COMMAND", flexible: true, minimum: 8),
    ]
}
