import ArgumentParser
import Foundation
import PortAuditKit

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "The store's path, size, schema, snapshots, usual interval and gaps.",
        discussion: "With --check, prints one line (with --format json, one object) and exits 1 when the last snapshot is older than --stale-after usual intervals (for monitoring).")

    @OptionGroup var store: StoreOptions
    @OptionGroup var output: ReportOptions

    @Flag(name: .long, help: "Exit 1 when the last snapshot is too old.")
    var check = false

    @Flag(name: .long, help: "Read every page and report the store's integrity; exit 1 unless it is ok.")
    var verify = false

    @Option(name: .long, help: ArgumentHelp("With --check: how many usual intervals make the last snapshot too old.", valueName: "n"))
    var staleAfter: Double = 3

    @Option(name: .long, help: ArgumentHelp("The interval to assume while the store has fewer than two snapshots.", valueName: "duration"))
    var every: String = "5m"

    func validate() throws {
        guard staleAfter > 0, staleAfter.isFinite else { throw ValidationError("--stale-after must be a number above 0") }
        do { _ = try DurationText.seconds(every) } catch { throw ValidationError("--every: \(error)") }
    }

    func run() throws {
        let status = try store.open(.readOnly).status(verify: verify)
        if verify, let integrity = status.integrity, integrity != "ok" {
            FileHandle.standardError.write(Data("portaudit: store \(status.path) is damaged: \(integrity)\n".utf8))
            throw ExitCode(1)
        }
        guard check else {
            switch output.format {
            case .table: print(StatusText.status(status, style: output.style))
            case .json: print(try JSONOutput.encode(status))
            }
            return
        }
        let staleness = status.staleness(intervals: staleAfter, fallbackInterval: Double(try DurationText.seconds(every)))
        if output.format == .json {
            print(try JSONOutput.encode(CheckReport(ok: !staleness.stale, path: status.path, lastSnapshot: status.lastSnapshot,
                                                    ageSeconds: staleness.age, limitSeconds: staleness.limit,
                                                    usualIntervalSeconds: staleness.usual)))
            if staleness.stale { throw ExitCode(1) }
            return
        }
        let limit = "\(staleAfter.formatted()) × \(DurationText.approximate(staleness.usual))"
        guard let age = staleness.age, let last = status.lastSnapshot else {
            FileHandle.standardError.write(Data("portaudit: stale: no snapshot in \(status.path) yet\n".utf8))
            throw ExitCode(1)
        }
        let when = Timestamp.human(last, utc: output.utc)
        if staleness.stale {
            FileHandle.standardError.write(Data("portaudit: stale: last snapshot \(when), \(DurationText.approximate(age)) ago, more than \(limit)\n".utf8))
            throw ExitCode(1)
        }
        print("ok: last snapshot \(when), \(DurationText.approximate(max(0, age))) ago (limit \(limit))")
    }
}

/// What `status --check --format json` prints: the verdict and the figures behind it.
private struct CheckReport: Encodable {
    var ok: Bool
    var path: String
    var lastSnapshot: Date?
    /// Seconds since the last snapshot; null when there is none.
    var ageSeconds: Double?
    /// Older than this is stale: --stale-after usual intervals.
    var limitSeconds: Double
    var usualIntervalSeconds: Double

    /// Absent values are written as null, as in every other JSON output.
    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(ok, forKey: .ok)
        try c.encode(path, forKey: .path)
        try c.encode(lastSnapshot, forKey: .lastSnapshot)
        try c.encode(ageSeconds, forKey: .ageSeconds)
        try c.encode(limitSeconds, forKey: .limitSeconds)
        try c.encode(usualIntervalSeconds, forKey: .usualIntervalSeconds)
    }

    enum CodingKeys: String, CodingKey { case ok, path, lastSnapshot, ageSeconds, limitSeconds, usualIntervalSeconds }
}
