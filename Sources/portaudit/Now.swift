import ArgumentParser
import PortAuditKit

struct Now: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print what listens now, with every process holding each socket; stores nothing.")

    @OptionGroup var output: OutputOptions
    @OptionGroup var sourceOptions: SourceOptions

    func run() throws {
        let (listeners, _) = try sourceOptions.source.currentListeners()
        switch output.format {
        case .table: print(ListenerText.now(listeners, style: output.style))
        case .json: print(try JSONOutput.encode(listeners))
        }
    }
}
