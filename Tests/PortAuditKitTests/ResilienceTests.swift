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

        var stored: [Int64] = [], supersededBy: [Int64] = []
        for result in results {
            if result.status == 0, result.stdout.hasPrefix("snapshot not stored: snapshot ") {
                // Overtaken: a run that started later was stored first; this one stored nothing.
                let id = result.stdout.split(separator: " ").dropFirst(4).first.flatMap { Int64($0.dropLast()) }
                try #require(id != nil, "\(result.stdout)")
                supersededBy.append(id!)
            } else if result.status == 0 {
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
        #expect(stored.count + supersededBy.count == 20, "with a 60 s timeout every run should have been stored or overtaken")
        #expect(!stored.isEmpty)
        #expect(Set(supersededBy).isSubset(of: Set(stored)), "a run was said to be overtaken by a snapshot no run reported")
        // Ids keep time order: no run stored an older picture after a newer one.
        let inverted = try DatabaseQueue(path: db).read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM snapshot a JOIN snapshot b ON b.id > a.id WHERE b.started_at < a.started_at")
        }
        #expect(inverted == 0)
    }

    private let t0 = Date(timeIntervalSince1970: 1_790_000_000)

    /// A new store in its own directory, holding this machine's snapshot stamped `t0`.
    private func storeWithFirstSnapshot() throws -> (directory: TemporaryDirectory, db: String, store: Store) {
        let directory = try TemporaryDirectory()
        let db = directory.file("store.db")
        let store = try Store(path: db, access: .readWrite)
        _ = try store.snapshot(from: LinuxListenerSource(), clock: { [t0] in t0 })
        return (directory, db, store)
    }

    /// A run overtaken by a later one (a slow snapshot and cron's next) stores nothing; a run
    /// that merely finishes after an earlier one is stored after it, as before.
    @Test func anOvertakenSnapshotIsNotStoredAfterTheNewerOne() throws {
        /// The machine's real listeners, with another snapshot, stamped `otherAt`, stored
        /// while this one collects.
        func overtaken(db: String, otherAt: Date) -> AlteredLinuxSource {
            AlteredLinuxSource { _ in _ = try Store(path: db, access: .readWrite).snapshot(from: LinuxListenerSource(), clock: { otherAt }) }
        }
        let (directory, db, store) = try storeWithFirstSnapshot()
        defer { directory.remove() }
        #expect(throws: StoreError.superseded(by: 2, startedAt: t0.addingTimeInterval(120))) {
            try store.snapshot(from: overtaken(db: db, otherAt: t0.addingTimeInterval(120)), clock: { t0.addingTimeInterval(60) })
        }
        let stored = try store.snapshot(from: overtaken(db: db, otherAt: t0.addingTimeInterval(180)), clock: { t0.addingTimeInterval(240) })
        #expect(stored.id == 4)
        let times = try DatabaseQueue(path: db).read { db in try Int64.fetchAll(db, sql: "SELECT started_at FROM snapshot ORDER BY id") }
        #expect(times == [0, 120, 180, 240].map { Timestamp.milliseconds(t0.addingTimeInterval(TimeInterval($0))) })
        // A clock set back is no overtaking: the later-stamped snapshot was there before this one began.
        #expect(try store.snapshot(from: LinuxListenerSource(), clock: { t0.addingTimeInterval(200) }).id == 5)
    }

    /// A run takes its start before it opens the store; one of the same host that began later
    /// and was stored meanwhile makes it collect again, stamped after that one, even when
    /// another machine's snapshot (its clock behind) was stored last.
    @Test func aRunOvertakenWhileItOpensTheStoreCollectsAgainAfterTheNewerOne() throws {
        /// This machine's listeners, as another machine would store them.
        let otherMachine = AlteredLinuxSource { observation in
            observation.host = HostIdentity(hostname: "elsewhere", machineID: "not-this-machine", bootID: observation.host.bootID)
        }
        let (directory, db, store) = try storeWithFirstSnapshot()
        defer { directory.remove() }
        // Stored while the run below opened the store: it began at t0 + 60, this one later.
        _ = try store.snapshot(from: LinuxListenerSource(), clock: { t0.addingTimeInterval(120) })
        _ = try store.snapshot(from: otherMachine, clock: { t0.addingTimeInterval(30) })
        var clockReadings = [t0.addingTimeInterval(60), t0.addingTimeInterval(180)]
        let stored = try store.snapshot(from: LinuxListenerSource(), clock: {
            clockReadings.count > 1 ? clockReadings.removeFirst() : clockReadings[0]
        })
        #expect(stored.id == 4)
        #expect(stored.startedAt == t0.addingTimeInterval(180), "stamped with its first start, it would sit after a later snapshot")
        #expect(clockReadings.count == 1, "the run did not take its start again")
        let times = try DatabaseQueue(path: db).read { db in
            try Int64.fetchAll(db, sql: "SELECT started_at FROM snapshot WHERE host_id = (SELECT host_id FROM snapshot WHERE id = 1) ORDER BY id")
        }
        #expect(times == [0, 120, 180].map { Timestamp.milliseconds(t0.addingTimeInterval(TimeInterval($0))) })
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
            // An overtaken run (see anOvertakenSnapshotIsNotStoredAfterTheNewerOne) succeeds, storing nothing.
            if result.status == 0 { stored += result.stdout.hasPrefix("snapshot not stored") ? 0 : 1; continue }
            #expect(result.stderr.contains("locked by another writer"), "\(result.stderr)")
        }
        #expect(stored >= 1)
        #expect(try Self.checkWhole(db).count == 1 + stored)
    }
}

/// The machine's real listeners, each observation passed through `alter` before it is stored.
struct AlteredLinuxSource: ListenerSource {
    var alter: @Sendable (inout Observation) throws -> Void

    func observe() throws -> Observation { try observe(knownHolders: { .none }) }

    func observe(knownHolders: () throws -> KnownHolders) throws -> Observation {
        var observation = try LinuxListenerSource().observe(knownHolders: knownHolders)
        try alter(&observation)
        return observation
    }

    func describe(_ processes: some Collection<ProcessIdentity>) -> [ProcessIdentity: ProcessDetails] {
        LinuxListenerSource().describe(processes)
    }
}
