import ArgumentParser
import PortAuditKit

struct Now: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print what listens now, with every process holding each socket; stores nothing.")

    @OptionGroup var output: OutputOptions
    @OptionGroup var sourceOptions: SourceOptions
    @OptionGroup var namespace: NamespaceOptions

    func run() throws {
        var source = sourceOptions.source
        source.namespaces = try namespace.selection
        let (listeners, _) = try source.currentListeners()
        switch output.format {
        case .table: print(ListenerText.now(listeners, style: output.style))
        case .json: print(try JSONOutput.encode(listeners))
        }
    }
}
