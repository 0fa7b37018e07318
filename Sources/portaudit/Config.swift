import ArgumentParser
import Foundation
import PortAuditKit

struct Config: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config",
        abstract: "Show or set the store's settings, which every run (cron's too) honours.",
        discussion: """
            cmdline full|redact|none: what is kept of holders' command lines. `redact` masks values \
            that look like secrets (--password=…, token=…, -p SECRET, user:password@ in URLs); `none` \
            keeps none. Setting redact or none also applies it to the command lines already stored.
            """)

    @Argument(help: "The setting: cmdline. Omitted, every setting is listed.")
    var name: String?

    @Argument(help: "The new value; omitted, the current one is printed.")
    var value: String?

    @OptionGroup var store: StoreOptions

    func validate() throws {
        guard let name else {
            if value != nil { throw ValidationError("a value needs the name of its setting") }
            return
        }
        guard name == "cmdline" else { throw ValidationError("unknown setting \"\(name)\"; known: cmdline") }
        if let value, CommandLinePolicy(rawValue: value) == nil {
            throw ValidationError("cmdline must be full, redact or none, not \"\(value)\"")
        }
    }

    func run() throws {
        guard let value, let policy = CommandLinePolicy(rawValue: value) else {
            let current = try store.open(.readOnly).commandLinePolicy().rawValue
            print(name == nil ? "cmdline = \(current)" : current)
            return
        }
        // Setting the policy before the first snapshot is why this may create the store; a
        // mistyped --db would otherwise leave the real store's setting unchanged unnoticed.
        let opened = try store.open(.readWrite)
        let changed = try opened.setCommandLinePolicy(policy)
        print("cmdline = \(policy.rawValue)" + (changed > 0 ? "; \(changed) stored command lines rewritten" : ""))
        if opened.created { FileHandle.standardError.write(Data("note: there was no store at \(store.path); this created one\n".utf8)) }
    }
}
