import ArgumentParser
import Foundation
import PortAuditKit

extension SchedulePlan.Kind: EnumerableFlag {}

struct Schedule: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schedule",
        abstract: "Install, remove or show the periodic `portaudit snapshot` (cron or a systemd timer).",
        discussion: """
            As root: /etc/cron.d/portaudit, or /etc/systemd/system/portaudit-snapshot.{service,timer}. \
            As another user: that user's crontab, or ~/.config/systemd/user units. The files name this \
            binary's absolute path and the store; copies are in the repository's contrib/.
            """,
        subcommands: [Install.self, Remove.self, Show.self])

    struct Options: ParsableArguments {
        @Option(name: .long, help: ArgumentHelp("Time between snapshots: 5m, 15m, 1h.", valueName: "duration"))
        var every = "5m"

        @Flag(help: "cron or a systemd timer (default: systemd when it is running, else cron).")
        var kind: SchedulePlan.Kind?

        /// Writes under this directory instead of /, and runs no systemctl/crontab (tests).
        @Option(name: .long, help: .hidden)
        var root: String?

        /// The portaudit to run; this binary by default.
        @Option(name: .long, help: .hidden)
        var binary: String?

        @OptionGroup var store: StoreOptions

        func validate() throws {
            do { _ = try DurationText.seconds(every) } catch { throw ValidationError("--every: \(error)") }
        }

        var user: (name: String, home: String)? {
            guard geteuid() != 0 else { return nil }
            let name = getpwuid(geteuid()).map { String(cString: $0.pointee.pw_name) } ?? String(geteuid())
            return (name, ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory())
        }

        func plan() throws -> SchedulePlan {
            let chosen = kind ?? (FileManager.default.fileExists(atPath: "/run/systemd/system") ? .systemd : .cron)
            let binaryPath = binary ?? ((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0])
            do {
                return try SchedulePlan(kind: chosen, every: try DurationText.seconds(every), binary: absolute(binaryPath),
                                        store: absolute(store.path), user: user)
            } catch let error as SchedulePlan.Invalid {
                throw ValidationError(error.description)
            }
        }

        func absolute(_ path: String) -> String {
            path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        }

        /// Where a target path lives here: under --root when given.
        func local(_ path: String) -> String { (root ?? "") + path }

        var isUserCrontab: (SchedulePlan.File) -> Bool { { $0.path.hasPrefix("/var/spool/cron/crontabs/") } }

        func runAll(_ commands: [[String]]) throws {
            guard root == nil else { return }
            for command in commands {
                let result = try runCommand(command)
                guard result.status == 0 else {
                    throw ValidationError("`\(command.joined(separator: " "))` failed: \(result.output.trimmingCharacters(in: .whitespacesAndNewlines))")
                }
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "show", abstract: "Print what `schedule install` would write and run; change nothing.")
        @OptionGroup var options: Options

        func run() throws {
            let plan = try options.plan()
            for file in plan.files {
                print("# \(options.local(file.path))")
                print(file.content, terminator: file.content.hasSuffix("\n") ? "" : "\n")
            }
            for command in plan.activate { print("# then: \(command.joined(separator: " "))") }
        }
    }

    struct Install: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "install", abstract: "Write the cron file or the systemd units and activate them.")
        @OptionGroup var options: Options

        func run() throws {
            let plan = try options.plan()
            // The directory of the store exists (owner only) before the first run, so that a
            // hardened unit may be given write access to it.
            let storeDirectory = options.local((options.absolute(options.store.path) as NSString).deletingLastPathComponent)
            try? FileManager.default.createDirectory(atPath: storeDirectory, withIntermediateDirectories: true,
                                                     attributes: [.posixPermissions: 0o700])
            for file in plan.files {
                let path = options.local(file.path)
                if options.isUserCrontab(file) && options.root == nil {
                    let current = (try? runCommand(["crontab", "-l"]))?.output ?? ""
                    try writeCrontab(SchedulePlan.mergeCrontab(current, line: file.content))
                } else {
                    let content = options.isUserCrontab(file)
                        ? SchedulePlan.mergeCrontab((try? String(contentsOfFile: path, encoding: .utf8)) ?? "", line: file.content)
                        : file.content
                    try write(content, to: path, mode: options.isUserCrontab(file) ? 0o600 : 0o644)
                }
                print("installed \(path)")
            }
            try options.runAll(plan.activate)
            print("portaudit snapshot will run every \(options.every) into \(options.absolute(options.store.path))")
        }

        func write(_ content: String, to path: String, mode: Int) throws {
            do {
                try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                        withIntermediateDirectories: true)
                try content.write(toFile: path, atomically: true, encoding: .utf8)
                try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
            } catch {
                throw ValidationError("cannot write \(path): \((error as NSError).localizedDescription)")
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "remove", abstract: "Stop and delete whatever `schedule install` wrote (cron and systemd).")
        @OptionGroup var options: Options

        func run() throws {
            var removed: [String] = []
            for kind in SchedulePlan.Kind.allCases {
                let plan = try SchedulePlan(kind: kind, every: 300, binary: "x", store: "/x", user: options.user)
                let present = plan.files.filter { FileManager.default.fileExists(atPath: options.local($0.path)) }
                if present.isEmpty { continue }
                if kind == .systemd { try? options.runAll(plan.deactivate) }
                for file in present {
                    let path = options.local(file.path)
                    if options.isUserCrontab(file) {
                        let rest = SchedulePlan.mergeCrontab(try String(contentsOfFile: path, encoding: .utf8), line: nil)
                        if options.root == nil { try writeCrontab(rest) } else if rest.isEmpty {
                            try FileManager.default.removeItem(atPath: path)
                        } else {
                            try rest.write(toFile: path, atomically: true, encoding: .utf8)
                        }
                    } else {
                        do { try FileManager.default.removeItem(atPath: path) } catch {
                            throw ValidationError("cannot remove \(path): \((error as NSError).localizedDescription)")
                        }
                    }
                    removed.append(path)
                }
                if kind == .systemd { try? options.runAll([plan.activate[0]]) }  // daemon-reload
            }
            print(removed.isEmpty ? "no schedule installed" : removed.map { "removed \($0)" }.joined(separator: "\n"))
        }
    }
}

private func writeCrontab(_ content: String) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["crontab", "-"]
    let input = Pipe()
    process.standardInput = input
    do { try process.run() } catch { throw ValidationError("cannot run crontab: \(error)") }
    input.fileHandleForWriting.write(Data(content.utf8))
    try input.fileHandleForWriting.close()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw ValidationError("crontab refused the new table") }
}

/// Runs a command found on PATH, returning its status and combined output.
private func runCommand(_ arguments: [String]) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}
