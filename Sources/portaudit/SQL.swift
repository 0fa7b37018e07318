import ArgumentParser
import Foundation
import PortAuditKit

struct SQL: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sql",
        abstract: "Run one read-only SQL query against the store (see docs/schema.md for tables and views).",
        discussion: """
            Writes, ATTACH, transactions and setting PRAGMAs are refused before anything runs, and \
            the store is opened read-only: it is left byte for byte unchanged. Views for people: \
            current_listeners, listener_history, port_events, snapshots, listener_usage_history.
            """)

    @Argument(help: "The query, e.g. \"SELECT * FROM current_listeners\".")
    var query: String

    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let rows = try store.open(.readOnly).readOnlyQuery(query)
        // Text columns give way first; numbers are cut only when nothing else is left.
        let columns = rows.fields.enumerated().map { index, field in
            TableColumn(field, field, flexible: rows.rows.contains { if case .text = $0[index] { true } else { false } })
        }
        output.emit(rows, columns: columns, empty: "(no rows)")
    }
}
