import Foundation
import GRDB
import Testing
@testable import PortAuditKit

/// Overlapping runs and runs killed midway, with real processes on a real store. These
/// only take snapshots (of the machine's whole listener table, harmlessly), so they need
/// no listener of their own.
@Suite struct ResilienceTests {
    /// A started portaudit process whose output is read once it exits.
    final class Running {
        let process = Process()
        let out = Pipe(), err = Pipe()

        init(_ arguments: [String]) throws {
            process.executableURL = URL(fileURLWithPath: portauditBinary)
            process.arguments = arguments
            process.standardOutput = out
            process.standardError = err
            process.standardInput = FileHandle.nullDevice
            try process.run()
        }

        func finish() -> CommandResult {
            let stdout = out.fileHandleForReading.readDataToEndOfFile()
            let stderr = err.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return CommandResult(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                                 stderr: String(decoding: stderr, as: UTF8.self))
        }
    }

    /// What must hold in any store, whatever was killed when.
    static func checkWhole(_ db: String) throws -> [Int64] {
        try DatabaseQueue(path: db).read { db in
            #expect(try String.fetchAll(db, sql: "PRAGMA integrity_check") == ["ok"])
            #expect(try Row.fetchAll(db, sql: "PRAGMA foreign_key_check").isEmpty)
            guard try db.tableExists("snapshot") else { return [] }
            // Never in between: the newest snapshot's listener count is exactly what the
            // open intervals say is listening, and every interval has its holders.
            if let last = try Row.fetchOne(db, sql: "SELECT netns_id, listeners FROM snapshot ORDER BY id DESC LIMIT 1") {
                let open = try Int.fetchOne(db, sql: """
                    SELECT count(*) FROM listener_interval i JOIN listener l ON l.id = i.listener_id
                    WHERE i.last_snapshot_id IS NULL AND l.netns_id = ?
                    """, arguments: [last["netns_id"] as Int64])
                #expect(open == last["listeners"] as Int)
            }
            #expect(try Int.fetchOne(db, sql: """
                SELECT count(*) FROM listener_interval i WHERE NOT EXISTS (SELECT 1 FROM holding h WHERE h.interval_id = i.id)
                """) == 0)
            return try Int64.fetchAll(db, sql: "SELECT id FROM snapshot ORDER BY id")
        }
    }

    @Test(arguments: [true, false])
    func twentyOverlappingSnapshotsAreEachStoredOrClearlyRefused(freshStore: Bool) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let db = directory.file("store.db")
        if !freshStore { try #require(try portaudit("snapshot", "--db", db, "--quiet").status == 0) }
        let before = freshStore ? [] : try Self.checkWhole(db)

        let writers = try (0..<20).map { _ in try Running(["snapshot", "--db", db, "--lock-timeout", "60"]) }
        // Queries run during the writes: readers are not blocked and see a whole store.
        let readers = try (0..<5).map { _ in try Running(["status", "--db", db, "--format", "json"]) }
        let results = writers.map { $0.finish() }
        let readResults = readers.map { $0.finish() }

        var stored: [Int64] = []
        for result in results {
            if result.status == 0 {
                let id = result.stdout.split(separator: " ").dropFirst().first.flatMap { Int64($0.dropLast()) }
                try #require(id != nil, "\(result.stdout)")
                stored.append(id!)
            } else {
                // The only acceptable failure: a clear timeout.
                #expect(result.stderr.contains("locked by another writer"), "\(result.stderr)")
                #expect(result.stderr.split(separator: "\n").count == 1)
            }
        }
        for read in readResults {
            // A reader that came before the store existed may say so; nothing else.
            #expect(read.status == 0 || read.stderr.contains("no store at"), "\(read.stderr)")
        }
        #expect(Set(stored).count == stored.count, "two runs reported the same snapshot id")
        let ids = try Self.checkWhole(db)
        #expect(Set(ids) == Set(before + stored), "a reported snapshot is missing, or an unreported one appeared")
        #expect(stored.count == 20, "with a 60 s timeout every run should have been stored")
    }

    @Test func timeoutIsClearWhenTheWriterWaitsTooLittle() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let db = directory.file("store.db")
        try #require(try portaudit("snapshot", "--db", db, "--quiet").status == 0)
        let writers = try (0..<20).map { _ in try Running(["snapshot", "--db", db, "--lock-timeout", "0"]) }
        let results = writers.map { $0.finish() }
        var stored = 0
        for result in results {
            if result.status == 0 { stored += 1; continue }
            #expect(result.stderr.contains("locked by another writer"), "\(result.stderr)")
        }
        #expect(stored >= 1)
        #expect(try Self.checkWhole(db).count == 1 + stored)
    }
}
