import ArgumentParser
import Foundation
import PortAuditKit

struct Changes: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "changes",
        abstract: "What opened, closed or changed holder, in order, with the snapshots it happened between.",
        discussion: """
            Each event happened after HAPPENED_AFTER (the last snapshot that did not see it; empty at \
            the store's first snapshot) and by HAPPENED_BY (the first snapshot that did). Events are \
            opened, closed, holder_changed (other processes) and sockets_changed (same processes, \
            other sockets). An event is listed when it may have happened between --since and --until. \
            An event marked "across gap" has a gap in the snapshots between its bounds (the machine \
            was off or the schedule broken): it happened at some unknown time in that gap.
            """)

    @OptionGroup var window: WindowOptions

    @Option(name: .long, help: ArgumentHelp("Only this port, range or service: 22, 8000-8100/tcp, ssh.", valueName: "port"))
    var port: String?

    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var namespace: NamespaceOptions

    func run() throws {
        let window = try window.window(output)
        let ports = try parsePorts(port)
        let events = try store.open(.readOnly).changes(in: window, ports: ports, netns: try namespace.selection)
        output.emit(events, columns: Self.columns, empty: "no changes in that window")
    }

    static let columns: [TableColumn] = [
        TableColumn.between("happened_after", "happened_by", "BETWEEN SNAPSHOTS"),
        TableColumn("event", "EVENT", compose: { field, style in
            // Short words where columns are scarce.
            let event = field("event").plainText
            let word = style.width == nil ? event : (event.hasSuffix("_changed") ? String(event.dropLast(8)) : event)
            // Not a claim that it happened at either snapshot: nothing was observed in between.
            return field("across_gap") == .bool(true) ? word + " (across gap)" : word
        }, colour: { value in
            switch value {
            case .text("opened"): .green
            case .text("closed"): .red
            default: .yellow
            }
        }),
        TableColumn.namespacedEndpoint,
        TableColumn("holders_after", "HOLDERS", flexible: true) { field, _ in
            let before = field("holders_before").plainText, after = field("holders_after").plainText
            switch (before.isEmpty, after.isEmpty) {
            case (true, _): return after
            case (_, true): return before + " → -"
            default: return before + " → " + after
            }
        },
    ]
}
