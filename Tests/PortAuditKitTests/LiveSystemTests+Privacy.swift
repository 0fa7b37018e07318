import Foundation
import GRDB
import Testing
@testable import PortAuditKit

/// What is stored of command lines, and a store on a full disk, with real listeners.
extension LiveSystemTests {
    static let secrets = ["hunter2", "tok3nvalue", "pw5ecret", "urlpa55"]

    /// A real listener whose command line carries each kind of secret.
    final class SecretListener {
        let process = Process()
        let port: Int

        init() throws {
            let out = Pipe()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["python3", "-c", """
                import socket, time
                s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
                print(s.getsockname()[1], flush=True)
                time.sleep(300)
                """, "--password=hunter2", "token=tok3nvalue", "-p", "pw5ecret", "https://admin:urlpa55@example.invalid/"]
            process.standardOutput = out
            process.standardInput = FileHandle.nullDevice
            try process.run()
            var line = Data()
            while !line.contains(UInt8(ascii: "\n")) {
                let chunk = out.fileHandleForReading.availableData
                guard !chunk.isEmpty else { throw TestFailure("the secret listener did not start") }
                line += chunk
            }
            guard let port = Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) else {
                throw TestFailure("the secret listener printed no port")
            }
            self.port = port
        }

        /// SIGKILL: the test runner's threads block SIGTERM, and children inherit that mask.
        func stop() {
            guard process.isRunning else { return }
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    static func storedCommandLine(_ db: String, port: Int) throws -> String?? {
        try DatabaseQueue(path: db).read { db in
            try Row.fetchOne(db, sql: """
                SELECT p.cmdline FROM process p JOIN holding h ON h.process_id = p.id
                JOIN listener_interval i ON i.id = h.interval_id JOIN listener l ON l.id = i.listener_id
                WHERE l.port = ?
                """, arguments: [port]).map { $0["cmdline"] as String? }
        }
    }

    /// Every byte the store keeps on disk, the log included.
    static func leaked(_ db: String) throws -> [String] {
        let bytes = try storeBytes(db).reduce(Data(), +)
        return secrets.filter { bytes.range(of: Data($0.utf8)) != nil }
    }

    @Test func secretsInCommandLinesAreMaskedOrOmittedBeforeStoring() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let listener = try SecretListener()
        defer { listener.stop() }
        let port = listener.port

        // Control: stored in full, the secrets are there to be found.
        let full = directory.file("full.db")
        try #require(try portaudit("snapshot", "--db", full, "--quiet").status == 0)
        let fullLine = try #require(try Self.storedCommandLine(full, port: port) ?? nil)
        #expect(fullLine.contains("--password=hunter2"))
        #expect(try Self.leaked(full) == Self.secrets)

        func expectMasked(_ db: String, _ how: String) throws {
            // Bytes first: the test's own connection to the store checkpoints its log on closing.
            #expect(try Self.leaked(db).isEmpty, "\(how) left secrets in the file")
            let line = try #require(try Self.storedCommandLine(db, port: port) ?? nil, "\(how)")
            #expect(line.contains("--password=***"), "\(how): \(line)")
            #expect(line.contains("token=***"), "\(how): \(line)")
            #expect(line.contains("-p ***"), "\(how): \(line)")
            #expect(line.contains("https://admin:***@example.invalid/"), "\(how): \(line)")
        }

        let flagged = directory.file("flag.db")
        try #require(try portaudit("snapshot", "--db", flagged, "--quiet", "--redact").status == 0)
        try expectMasked(flagged, "--redact")

        // The store's setting, so that cron's plain `snapshot` honours it.
        let setting = directory.file("setting.db")
        // Before the first snapshot, so it creates the store, and says so (a mistyped --db shows).
        let created = try portaudit("config", "cmdline", "redact", "--db", setting)
        try #require(created.status == 0)
        #expect(created.stderr == "note: there was no store at \(setting); this created one\n")
        #expect(try portaudit("config", "cmdline", "redact", "--db", setting).stderr == "")
        #expect(try portaudit("config", "cmdline", "--db", setting).stdout == "redact\n")
        #expect(try portaudit("config", "--db", setting).stdout == "cmdline = redact\n")
        try #require(try portaudit("snapshot", "--db", setting, "--quiet").status == 0)
        try expectMasked(setting, "the redact setting")
        let status = try #require(try parseJSON(try portaudit("status", "--db", setting, "--format", "json").stdout) as? [String: Any])
        #expect(status["command_lines"] as? String == "redact")

        // Choosing redact later rewrites what was stored in full, leaving nothing behind.
        let rewritten = try portaudit("config", "cmdline", "redact", "--db", full)
        #expect(rewritten.status == 0, "\(rewritten.stderr)")
        #expect(rewritten.stdout.contains("rewritten"))
        try expectMasked(full, "config cmdline redact on a full store")

        // The same when the full text still sits in the write-ahead log, not yet in the file:
        // a store created empty (its migration checkpoints), then one snapshot of the secrets.
        let logged = directory.file("logged.db")
        try #require(try portaudit("config", "cmdline", "full", "--db", logged).status == 0)
        try #require(try portaudit("snapshot", "--db", logged, "--quiet").status == 0)
        let walBytes = try Data(contentsOf: URL(fileURLWithPath: logged + "-wal"))
        #expect(Self.secrets.allSatisfy { walBytes.range(of: Data($0.utf8)) != nil }, "control: the secrets should be in the log")
        try #require(try portaudit("config", "cmdline", "redact", "--db", logged).status == 0)
        try expectMasked(logged, "config cmdline redact with the secrets in the log")

        let none = directory.file("none.db")
        try #require(try portaudit("snapshot", "--db", none, "--quiet", "--no-cmdline").status == 0)
        #expect(try Self.storedCommandLine(none, port: port) == .some(.none))
        #expect(try Self.leaked(none).isEmpty)
        let history = try portaudit("history", "\(port)", "--db", none, "--format", "json")
        let process = try #require(((try parseJSON(history.stdout) as? [String: Any])?["intervals"] as? [[String: Any]])?
            .first?["processes"] as? [[String: Any]])
        #expect(process.first?["cmdline"] is NSNull)
        #expect(process.first?["name"] as? String == "python3")

        let bad = try portaudit("config", "cmdline", "partial", "--db", none)
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("full, redact or none"))
    }

    /// A file system with no space left: the snapshot fails in one line and the store
    /// keeps every earlier snapshot; once there is room again it goes on.
    @Test(.enabled(if: geteuid() == 0)) func fullDiskFailsClearlyAndLosesNothing() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let mountPoint = directory.file("small")
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        let mount = try run("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=8m", "tmpfs", mountPoint])
        try #require(mount.status == 0, "cannot mount a tmpfs here: \(mount.stderr)")
        defer { _ = try? run("/usr/bin/umount", ["-l", mountPoint]) }

        let db = mountPoint + "/store.db"
        try #require(try portaudit("snapshot", "--db", db, "--quiet").status == 0)
        try #require(try portaudit("snapshot", "--db", db, "--quiet").status == 0)
        // Fill what is left.
        let fillerPath = mountPoint + "/filler"
        try #require(FileManager.default.createFile(atPath: fillerPath, contents: nil))
        let filler = try #require(FileHandle(forWritingAtPath: fillerPath))
        let block = Data(count: 64 * 1024)
        while (try? filler.write(contentsOf: block)) != nil {}
        while (try? filler.write(contentsOf: Data(count: 512))) != nil {}
        try filler.close()

        var sockets = try LoopbackSockets(count: 300)
        defer { sockets.close() }
        let result = try portaudit("snapshot", "--db", db)
        #expect(result.status != 0)
        #expect(result.stderr.contains("no space left"), "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1)
        let counted = try ResilienceTests.checkWhole(db)
        #expect(counted.count == 2)

        try FileManager.default.removeItem(atPath: mountPoint + "/filler")
        let again = try portaudit("snapshot", "--db", db)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try ResilienceTests.checkWhole(db).count == 3)
    }
}
