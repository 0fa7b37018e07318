import ArgumentParser
import Foundation
import PortAuditKit

extension UsagePeriod: ExpressibleByArgument {}

struct Usage: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "usage",
        abstract: "How listening changed over time: per period listeners, opened, closed, processes, connections.",
        discussion: """
            Connections are the established TCP connections of the listeners and the accept queue \
            their waiting connections, at the snapshots of each period (max over the period, and the \
            mean for connections). Periods start at local midnight (UTC with --utc); weeks on Monday. \
            --since defaults to 24h for --by hour, 30d for day, 12w for week, or the first snapshot when later. --per-listener gives \
            one row per TCP listener instead, busiest first.
            """)

    @Option(name: .long, help: ArgumentHelp("From this time on (same forms as for changes).", valueName: "time"))
    var since: String?

    @Option(name: .long, help: "Period: hour, day or week.")
    var by: UsagePeriod = .day

    @Option(name: .long, help: ArgumentHelp("Only this port, range or service: 22, 8000-8100/tcp, ssh.", valueName: "port"))
    var port: String?

    @Flag(name: .long, help: "One row per TCP listener instead of per period: snapshots that saw it, connections and accept queue.")
    var perListener = false

    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions

    func run() throws {
        let now = Date()
        let given = try output.time(since, option: "--since", now: now)
        let ports = try parsePorts(port)
        let opened = try store.open(.readOnly)
        // By default the last span, but not before the store began: a day-old store shows one day.
        let since = try given ?? max(now.addingTimeInterval(-by.defaultSpan), opened.earliestSnapshot() ?? now)
        if perListener {
            let rows = try opened.usageByListener(since: since, until: now, ports: ports)
            let top = UsageChart.top(rows, "connections_max")
            output.emit(rows, columns: [
                TableColumn.endpoint,
                TableColumn("snapshots", "SNAPS", alignRight: true),
                TableColumn("connections_max", "CONNS", alignRight: true),
                TableColumn("connections_avg", "AVG", alignRight: true),
                TableColumn("accept_queue_max", "QUEUE", alignRight: true),
                TableColumn("service", "SERVICE", flexible: true),
                TableColumn("connections_max", "CHART", flexible: true, compose: { field, _ in
                    guard case .int(let v) = field("connections_max") else { return "" }
                    return UsageChart.bar(Double(v), top: top, width: 20)
                }, colour: { _ in .cyan }),
            ], empty: "no TCP listener seen in that window")
            return
        }
        let rows = try opened.usage(since: since, until: now, by: by, ports: ports, timeZone: output.timeZone)
        let top = UsageChart.top(rows, "connections_max")
        let period = by
        let columns: [TableColumn] = [
            TableColumn("period_start", "PERIOD") { field, style in
                guard case .time(let date) = field("period_start") else { return "-" }
                let text = style.time(date)
                return period == .hour ? String(text.prefix(16)) : String(text.prefix(10))
            },
            TableColumn("snapshots", "SNAPS", alignRight: true),
            TableColumn("listeners", "LISTEN", alignRight: true),
            TableColumn("opened", "OPEN", alignRight: true, colour: { $0 == .int(0) ? nil : .green }),
            TableColumn("closed", "CLOSE", alignRight: true, colour: { $0 == .int(0) ? nil : .red }),
            TableColumn("processes", "PROCS", alignRight: true),
            TableColumn("connections_max", "CONNS", alignRight: true),
            TableColumn("accept_queue_max", "QUEUE", alignRight: true),
            TableColumn("connections_max", "CHART", flexible: true, compose: { field, _ in
                guard case .int(let v) = field("connections_max") else { return "" }
                return UsageChart.bar(Double(v), top: top, width: 20)
            }, colour: { _ in .cyan }),
        ]
        output.emit(rows, columns: columns, empty: "no periods", footer: UsageChart.render(rows, width: output.style.width))
    }
}
