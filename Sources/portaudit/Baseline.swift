import ArgumentParser
import Foundation
import PortAuditKit

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Compare what listens now with a baseline file; exit 1 when something is unexpected or missing.",
        discussion: "Prints one line per unexpected listener and per missing entry: what a cron job mails or a monitoring system reads.")

    @Option(name: .long, help: ArgumentHelp("The expected listeners (see `portaudit baseline save`).", valueName: "file"))
    var baseline: String

    @OptionGroup var output: ReportOptions
    @OptionGroup var sourceOptions: SourceOptions

    func run() throws {
        let text: String
        do { text = try String(contentsOfFile: baseline, encoding: .utf8) } catch {
            throw ValidationError("cannot read baseline \(baseline): \((error as NSError).localizedDescription)")
        }
        let expected: PortAuditKit.Baseline
        do { expected = try PortAuditKit.Baseline(parsing: text) } catch let error as PortAuditKit.Baseline.Invalid {
            throw ValidationError("\(baseline): \(error)")
        }
        let result = expected.check(try sourceOptions.source.currentListeners().listeners)
        switch output.format {
        case .json: print(try JSONOutput.encode(result))
        case .table:
            for listener in result.unexpected { print("unexpected: \(listener.text)") }
            for entry in result.missing { print("missing: \(entry.text) (\(baseline) line \(entry.line))") }
            if result.ok { print("ok: \(result.listeners) listeners, all expected by \(baseline)") }
        }
        if !result.ok { throw ExitCode(1) }
    }
}

struct Baseline: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "baseline",
        abstract: "Write the current listeners as a baseline file to start from.",
        subcommands: [Save.self])

    struct Save: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "save", abstract: "Write what listens now as a baseline (to FILE, or standard output).")

        @Argument(help: "Where to write it; standard output when omitted.")
        var file: String?

        @OptionGroup var sourceOptions: SourceOptions

        func run() throws {
            let text = PortAuditKit.Baseline.text(for: try sourceOptions.source.currentListeners().listeners)
            guard let file else {
                print(text, terminator: "")
                return
            }
            do { try text.write(toFile: file, atomically: true, encoding: .utf8) } catch {
                throw ValidationError("cannot write \(file): \((error as NSError).localizedDescription)")
            }
        }
    }
}
