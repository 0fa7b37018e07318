import ArgumentParser
import PortAuditKit

struct Now: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "now",
        abstract: "Print what listens now, with every process holding each socket; stores nothing.",
        discussion: "json is an array of listeners, each with its processes; jsonl and csv give one flat row per holder.")

    @OptionGroup var output: OutputOptions
    @OptionGroup var sourceOptions: SourceOptions
    @OptionGroup var namespace: NamespaceOptions

    func run() throws {
        var source = sourceOptions.source
        source.countsConnections = false  // nothing here shows them
        source.namespaces = try namespace.selection
        let (listeners, _) = try source.currentListeners()
        switch output.format {
        case .table: print(ListenerText.now(listeners, style: output.style))
        case .json: print(try JSONOutput.encode(listeners))
        case .jsonl, .csv: output.emit(CurrentListener.records(listeners), columns: [], empty: "")
        }
    }
}
