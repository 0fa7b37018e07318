import Glibc
import Synchronization
import Testing
@testable import PortAuditKit

/// The work sharing behind the descriptor walk and the confirmation of known holders.
@Suite struct ParallelTests {
    /// Which worker did each item, and how often each item was done.
    private final class Record: Sendable {
        let visits: Mutex<[Int]>
        let workers: Mutex<[Int]>
        init(count: Int) {
            visits = Mutex(Array(repeating: 0, count: count))
            workers = Mutex(Array(repeating: -1, count: count))
        }
    }

    @Test(arguments: [(0, 4, 2), (1, 4, 2), (7, 1, 2), (100, 3, 2), (1_000, 16, 4), (50, 64, 2), (200, 8, 1)])
    func everyItemIsDoneOnceByAWorkerOfItsOwn(count: Int, chunk: Int, threads: Int) {
        let record = Record(count: count)
        // Slow enough items that helpers have time to join.
        Parallel.forEach(count: count, chunk: chunk, threads: threads) { worker, range in
            #expect(range.count <= chunk)
            for index in range {
                record.visits.withLock { $0[index] += 1 }
                record.workers.withLock { $0[index] = worker }
                for _ in 0..<2_000 { _ = getpid() }
            }
        }
        // Read only after forEach returned: every item must be done by then.
        #expect(record.visits.withLock { $0 } == Array(repeating: 1, count: count))
        let workers = Set(record.workers.withLock { $0 })
        #expect(workers.allSatisfy { (0..<threads).contains($0) })
    }

    @Test func aPendingResultIsComputedOnceAndRethrowsItsError() throws {
        let runs = Record(count: 1)
        let pending = Parallel.Pending { () -> Int in
            runs.visits.withLock { $0[0] += 1 }
            return 42
        }
        #expect(try pending.value() == 42)
        #expect(try pending.value() == 42)
        #expect(runs.visits.withLock { $0 } == [1])

        struct Refused: Error, Equatable {}
        let failing = Parallel.Pending { () throws -> Int in throw Refused() }
        #expect(throws: Refused()) { try failing.value() }
    }
}
