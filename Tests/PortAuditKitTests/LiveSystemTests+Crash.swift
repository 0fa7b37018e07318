import Foundation
import GRDB
import Testing
@testable import PortAuditKit

extension LiveSystemTests {
    /// SIGKILL at random moments of real runs: every kill leaves the store as it was
    /// before that run or after it. The first kills land while the store is being created;
    /// before every run this test replaces 100 loopback UDP sockets of its own, so that each
    /// run has hundreds of rows to write and kills land inside the write too.
    @Test func snapshotsKilledAtRandomMomentsLeaveTheStoreWhole() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let db = directory.file("store.db")

        // How long one whole run takes here, to spread the kills over it.
        let probeDirectory = try TemporaryDirectory()
        defer { probeDirectory.remove() }
        let started = Date()
        try #require(try portaudit("snapshot", "--db", probeDirectory.file("probe.db"), "--quiet").status == 0)
        try #require(try portaudit("snapshot", "--db", probeDirectory.file("probe.db"), "--quiet").status == 0)
        // The window follows the machine's load: it shrinks when runs finish before the
        // kill and grows when they are killed, so kills keep landing inside runs.
        var runMicroseconds = max(20_000, Int(Date().timeIntervalSince(started) / 2 * 1_000_000))

        var generator = SystemRandomNumberGenerator()
        var killed = 0, completed = 0, attempts = 0, killedUncommitted = 0
        var known: Set<Int64> = []
        var sockets = try LoopbackSockets(count: 100)
        defer { sockets.close() }
        while killed < 100 {
            attempts += 1
            sockets.close()
            sockets = try LoopbackSockets(count: 100)
            try #require(attempts < 1000, "could not kill 100 runs midway")
            // Every other run stops for 50 ms with all its rows written, uncommitted, and
            // says so: a kill then must leave no trace of it.
            let paused = attempts % 2 == 0
            let before = paused && FileManager.default.fileExists(atPath: db) ? try ResilienceTests.checkWhole(db) : nil
            let run = try ResilienceTests.Running(["snapshot", "--db", db, "--quiet"] + (paused ? ["--pause-before-commit", "0.05"] : []))
            usleep(UInt32(Int.random(in: 0...runMicroseconds * 6 / 5 + (paused ? 50_000 : 0), using: &generator)))
            kill(run.process.processIdentifier, SIGKILL)
            let result = run.finish()
            if run.process.terminationReason == .uncaughtSignal {
                killed += 1
                if let before, result.stderr.contains("written, not committed"), !result.stderr.contains("committing") {
                    killedUncommitted += 1
                    #expect(try ResilienceTests.checkWhole(db) == before, "a run killed before its commit left rows behind")
                }
                runMicroseconds = runMicroseconds * 21 / 20
            } else {
                #expect(result.status == 0, "\(result.stderr)")
                #expect(!paused || result.stderr.contains("written, not committed"))
                completed += 1
                runMicroseconds = max(1_000, runMicroseconds * 4 / 5)
            }
            if attempts % 10 == 0, FileManager.default.fileExists(atPath: db) {
                let ids = Set(try ResilienceTests.checkWhole(db))
                #expect(known.isSubset(of: ids), "snapshots \(known.subtracting(ids).sorted()) vanished")
                known = ids
            }
            // Every few kills a run that completes, so there is history for later kills to damage.
            if attempts % 10 == 5 {
                let result = try portaudit("snapshot", "--db", db)
                #expect(result.status == 0, "\(result.stderr)")
                completed += 1
            }
        }
        let ids = Set(try ResilienceTests.checkWhole(db))
        #expect(known.isSubset(of: ids))
        #expect(killedUncommitted >= 5, "too few kills landed between the last write and the commit")
        #expect(ids.count >= completed, "a completed run's snapshot is missing")
        // And the store still takes snapshots.
        let after = try portaudit("snapshot", "--db", db)
        #expect(after.status == 0, "\(after.stderr)")
        #expect(Set(try ResilienceTests.checkWhole(db)).count == ids.count + 1)
        print("crash test: \(killed) kills (\(killedUncommitted) between the last write and the commit, \(ids.count - completed) just after the commit), \(completed) completed runs, \(attempts) attempts, window ≈ \(runMicroseconds) µs")
    }
}

/// Bound UDP sockets on 127.0.0.1 with ephemeral ports, held by the test process itself.
struct LoopbackSockets {
    private(set) var descriptors: [Int32] = []

    init(count: Int) throws {
        for _ in 0..<count {
            let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
            guard fd >= 0, bound else {
                if fd >= 0 { Glibc.close(fd) }
                close()
                throw TestFailure("cannot bind a loopback UDP socket")
            }
            descriptors.append(fd)
        }
    }

    mutating func close() {
        for fd in descriptors { Glibc.close(fd) }
        descriptors = []
    }
}
