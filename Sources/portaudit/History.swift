import ArgumentParser
import PortAuditKit

struct History: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "Since when a port listens, and which processes held it, from the store.",
        discussion: """
            PORT is a number (1328), a service name (ssh), either with /tcp or /udp. json is one \
            document with every interval; jsonl and csv give one flat row per holder of each interval.
            """)

    @Argument(help: "The port: 1328, 1328/tcp, ssh, ssh/udp.")
    var port: String

    @OptionGroup var store: StoreOptions
    @OptionGroup var output: OutputOptions
    @OptionGroup var namespace: NamespaceOptions

    func run() throws {
        guard let spec = try parsePorts(port) else { return }
        if spec.isRange {
            throw ValidationError("history takes one port, not the range '\(port)'; `portaudit ports --all --port \(port)` lists a range")
        }
        let history = try store.open(.readOnly).history(port: spec.port, proto: spec.proto, netns: try namespace.selection)
        switch output.format {
        case .table: print(ListenerText.history(history, style: output.style))
        case .json: print(try JSONOutput.encode(history))
        case .jsonl, .csv: output.emit(history.records, columns: [], empty: "")
        }
    }
}
