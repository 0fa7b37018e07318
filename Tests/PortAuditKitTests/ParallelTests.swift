import Dispatch
import Glibc
import Synchronization
import Testing
import CLinuxDiag
@testable import PortAuditKit

/// The work sharing behind the descriptor walk and the confirmation of known holders.
@Suite struct ParallelTests {
    /// What the workers did: items finished, worker per item, and which workers are busy.
    private final class Record: Sendable {
        let finished: Mutex<[Int]>
        let workers: Mutex<[Int]>
        let busy: Mutex<Set<Int>>
        let sharedWorker = Atomic<Bool>(false)
        init(count: Int) {
            finished = Mutex(Array(repeating: 0, count: count))
            workers = Mutex(Array(repeating: -1, count: count))
            busy = Mutex([])
        }
    }

    @Test(arguments: [(0, 4, 2), (1, 4, 2), (7, 1, 2), (100, 3, 2), (1_000, 16, 4), (50, 64, 2), (200, 8, 1)])
    func everyItemIsDoneOnceByAWorkerOfItsOwn(count: Int, chunk: Int, threads: Int) {
        let record = Record(count: count)
        Parallel.forEach(count: count, chunk: chunk, threads: threads) { worker, range in
            // Two threads given one worker number would race on a per-worker accumulator.
            if !record.busy.withLock({ $0.insert(worker).inserted }) { record.sharedWorker.store(true, ordering: .relaxed) }
            defer { record.busy.withLock { _ = $0.remove(worker) } }
            for index in range {
                for _ in 0..<2_000 { _ = getpid() }  // slow enough items that helpers have time to join
                record.workers.withLock { $0[index] = worker }
                record.finished.withLock { $0[index] += 1 }  // counted once the item is done
            }
        }
        // Read only after forEach returned: every item must be done by then, once.
        #expect(record.finished.withLock { $0 } == Array(repeating: 1, count: count))
        let shared = record.sharedWorker.load(ordering: .relaxed)
        #expect(!shared)
        #expect(record.workers.withLock { $0 }.allSatisfy { (0..<threads).contains($0) })
    }

    /// A helper does take part: the calling thread's range, if it gets one, waits until another
    /// worker has run (a helper that is awake already may take every range first).
    @Test func aHelperTakesPartInTheWork() {
        let helperRan = DispatchSemaphore(value: 0)
        let workers = Mutex<Set<Int>>([])
        Parallel.forEach(count: 8, chunk: 1, threads: 2) { worker, _ in
            workers.withLock { _ = $0.insert(worker) }
            if worker == 0 { _ = helperRan.wait(timeout: .now() + 30) } else { helperRan.signal() }
        }
        let seen = workers.withLock { $0 }
        #expect(seen.contains(1))
        #expect(seen.isSubset(of: [0, 1]))
    }

    /// A helper is created on another CPU than its creator's (cld_thread_create_elsewhere), but
    /// only to start there: once running, it may use every CPU the process may.
    @Test(.enabled(if: cld_usable_cpus() > 1, "one CPU: no other to start a helper on"))
    func aHelperMayRunOnEveryCPUOfTheProcess() {
        let helperRan = DispatchSemaphore(value: 0)
        let helperCPUs = Mutex<Int32?>(nil)
        Parallel.forEach(count: 2, chunk: 1, threads: 2) { worker, _ in
            if worker == 0 {
                _ = helperRan.wait(timeout: .now() + 30)
            } else {
                helperCPUs.withLock { $0 = cld_usable_cpus() }  // of the calling thread
                helperRan.signal()
            }
        }
        #expect(helperCPUs.withLock { $0 } == cld_usable_cpus())
    }

    /// Before the first helper starts, the .bss pages already touched are made the process's
    /// own (cld_populate_bss): one only read maps the kernel's shared zero page, whose
    /// replacement on a first write would interrupt the helper's CPU. Pages not touched stay
    /// unmapped, as a page mapped later needs no interrupt. Shown on a region of the test's own.
    @Test(.enabled(if: kernelPopulates, "a kernel before 5.14: no MADV_POPULATE_WRITE"))
    func touchedPagesAreMadeOwnAndOthersLeftUnmapped() throws {
        let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
        let pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC)
        try #require(pagemap >= 0)
        defer { close(pagemap) }
        // Bit 63: present; bit 56: mapped by this process alone (not the shared zero page).
        // Neither needs privileges.
        func state(_ address: UInt) -> (present: Bool, own: Bool) {
            var value: UInt64 = 0
            guard pread(pagemap, &value, 8, off_t(address / UInt(pageSize) * 8)) == 8 else { return (false, false) }
            return (value & (1 << 63) != 0, value & (1 << 56) != 0)
        }
        let region: UnsafeMutableRawPointer = mmap(nil, 8 * pageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        try #require(region != UnsafeMutableRawPointer(bitPattern: -1), "mmap failed")  // MAP_FAILED
        defer { munmap(region, 8 * pageSize) }
        let base = UInt(bitPattern: region)
        func states() -> [String] {
            (0..<8).map { page in
                let (present, own) = state(base + UInt(page * pageSize))
                return present ? (own ? "own" : "shared") : "-"
            }
        }
        #expect(region.load(fromByteOffset: 1 * pageSize, as: UInt8.self) == 0)  // a read maps the zero page
        #expect(region.load(fromByteOffset: 2 * pageSize, as: UInt8.self) == 0)
        region.storeBytes(of: 7, toByteOffset: 5 * pageSize + 3, as: UInt8.self)
        #expect(states() == ["-", "shared", "shared", "-", "-", "own", "-", "-"])

        #expect(cld_populate_touched(base, base + UInt(8 * pageSize)) == 0)
        #expect(states() == ["-", "own", "own", "-", "-", "own", "-", "-"])
        #expect(region.load(fromByteOffset: 5 * pageSize + 3, as: UInt8.self) == 7)
    }

    /// Whether the kernel takes MADV_POPULATE_WRITE, asked about a page of the test's own (asking
    /// with the .bss would populate it before the test could look).
    private static let kernelPopulates: Bool = {
        let size = Int(sysconf(Int32(_SC_PAGESIZE)))
        let page: UnsafeMutableRawPointer = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard page != UnsafeMutableRawPointer(bitPattern: -1) else { return false }
        defer { munmap(page, size) }
        return madvise(page, size, MADV_POPULATE_WRITE) == 0
    }()

    @Test func aPendingResultComesFromTheHelperOnceAndRethrowsItsError() throws {
        let started = DispatchSemaphore(value: 0)
        let go = DispatchSemaphore(value: 0)
        let runs = Mutex<[pthread_t]>([])
        let pending = Parallel.Pending { () -> Int in
            runs.withLock { $0.append(pthread_self()) }
            started.signal()
            go.wait()
            return 42
        }
        // The helper has begun it (the caller would otherwise be blocked here): the caller waits for its result.
        #expect(started.wait(timeout: .now() + 30) == .success)
        go.signal()
        #expect(try pending.value() == 42)
        #expect(try pending.value() == 42)
        let threads = runs.withLock { $0 }
        #expect(threads.count == 1)
        #expect(threads.allSatisfy { pthread_equal($0, pthread_self()) == 0 })

        struct Refused: Error, Equatable {}
        let failing = Parallel.Pending { () throws -> Int in throw Refused() }
        #expect(throws: Refused()) { try failing.value() }
    }
}
