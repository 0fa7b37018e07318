import ArgumentParser
import Foundation
import PortAuditKit

struct Ports: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ports",
        abstract: "One row per listener ever seen: first and last seen, main holder, IANA name and range.",
        discussion: """
            By default the listeners of the latest snapshot; --since T those seen since T; --all every \
            one; --new those first seen in the window (after a snapshot that did not see them; --since \
            defaults to 24h). A port with no registered IANA service, or in the dynamic range \
            (49152-65535), is marked worth a look; --unregistered keeps only those. A listener whose \
            presence spans a gap in the snapshots is marked "gap": it was not observed then, and \
            first and last seen remain the snapshots that saw it.
            """)

    @Option(name: .long, help: ArgumentHelp("Listeners seen from this time on (same forms as for changes).", valueName: "time"))
    var since: String?

    @Flag(name: .long, help: "Only listeners first seen since --since (default 24h).")
    var new = false

    @Flag(name: .long, help: "Every listener ever seen, not only those listening now.")
    var all = false

    @Flag(name: .long, help: "Only ports worth a look: no registered service, or in the dynamic range.")
    var unregistered = false

    @Option(name: .long, help: ArgumentHelp("Only this port, range or service: 22, 8000-8100/tcp, ssh.", valueName: "port"))
    var port: String?

    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var namespace: NamespaceOptions

    func validate() throws {
        if all && (new || since != nil) { throw ValidationError("--all lists every listener; it does not go with --new or --since") }
    }

    func run() throws {
        let now = Date()
        let since = try output.time(since, option: "--since", now: now)
        let scope: PortsFilter.Scope
        if new {
            scope = .newSince(since ?? now.addingTimeInterval(-86400))
        } else if let since {
            scope = .seenSince(since)
        } else {
            scope = all ? .all : .listeningNow
        }
        let filter = PortsFilter(scope: scope, worthALookOnly: unregistered, ports: try parsePorts(port),
                                 netns: try namespace.selection)
        let opened = try store.open(.readOnly)
        let rows = try opened.ports(filter)
        let (style, footer) = try output.asOfLatestSnapshot(opened)
        output.emit(rows, columns: Self.columns, empty: "no listener matches", footer: footer, style: style)
    }

    static let columns: [TableColumn] = [
        TableColumn.namespacedEndpoint,
        TableColumn.time("first_seen", "FIRST SEEN"),
        TableColumn("last_seen", "LAST SEEN") { field, style in
            let last = TableColumn.time("last_seen", "LAST SEEN", orNowWhen: "listening").compose?(field, style) ?? "-"
            // Seen on both sides of a gap, unknown inside it: not "listening throughout".
            return field("across_gap") == .bool(true) ? last + " (gap)" : last
        },
        TableColumn("main_holder", "HOLDER", flexible: true, minimum: 8, compose: { field, _ in
            let main = field("main_holder").plainText
            let count = Int(field("holder_count").plainText) ?? 0
            return main.isEmpty ? "-" : (count > 1 ? "\(main) (+\(count - 1))" : main)
        }),
        // A port worth a look says why, in yellow.
        TableColumn("worth_a_look", "SERVICE", flexible: true, minimum: 8, compose: { field, _ in
            let service = field("service").plainText
            guard field("worth_a_look") == .bool(true) else { return service }
            return service.isEmpty ? "unregistered" : "\(service) (dynamic)"
        }, colour: { $0 == .bool(true) ? .yellow : nil }),
    ]
}
