#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Synchronization
import CLinuxDiag

/// Work split over a few threads of one short-lived process.
///
/// The threads are its own, not Dispatch's: started ahead of the work (`prepare`), on another
/// CPU than their creator's (see `cld_thread_create_elsewhere`), then waiting for it. A waiting
/// thread wakes in about 0.06 ms; and `concurrentPerform` waits for every worker it asked for,
/// even one that arrives after all the work is done.
enum Parallel {
    /// Starts helper threads so that `threads` can work at once, if not started yet, and
    /// says how many helpers there are (fewer when no thread was to be had).
    @discardableResult
    static func prepare(threads: Int) -> Int {
        helpers.withLock { helpers in
            // Only the pages already touched: populating all of them, before the helper started
            // or while it started (it waits for the address space's lock meanwhile), held it
            // back 0.3 ms, on the path of a small snapshot.
            if helpers == 0 && threads > 1 { cld_populate_bss() }
            while helpers < threads - 1 {
                let retained = Unmanaged.passRetained(jobs).toOpaque()
                var thread = pthread_t()
                guard cld_thread_create_elsewhere(&thread, { argument in
                    Unmanaged<Jobs>.fromOpaque(argument!).takeRetainedValue().serve()
                }, retained) == 0 else {  // a process limit
                    Unmanaged<Jobs>.fromOpaque(retained).release()
                    break
                }
                pthread_detach(thread)
                helpers += 1
            }
            return helpers
        }
    }

    /// Calls `body(worker, range)` for consecutive ranges of `chunk` items covering
    /// `0..<count`, on the calling thread (worker 0) and on up to `threads - 1` helpers
    /// (workers 1…), each taking the next range nobody has taken; returns once every range
    /// is done, without waiting for a helper that comes too late to take one. `worker`
    /// lets a caller keep one accumulator per thread.
    static func forEach(count: Int, chunk: Int, threads: Int,
                        _ body: @escaping @Sendable (_ worker: Int, _ range: Range<Int>) -> Void) {
        let chunk = max(1, chunk)
        let work = Work(count: count, chunk: chunk, body: body)
        let wanted = min(threads, (count + chunk - 1) / chunk) - 1
        if wanted > 0 { jobs.post(work, copies: min(wanted, prepare(threads: wanted + 1))) }
        work.drain(worker: 0)
        work.waitUntilDone()
    }

    /// A result computed on a helper while the calling thread goes on.
    final class Pending<T: Sendable>: Sendable {
        private final class Slot: @unchecked Sendable {
            // Written by whichever thread runs the work's one item; read once it is done.
            var result: Result<T, Error>?
        }
        private let slot = Slot()
        private let work: Work

        /// Starts `body` on a helper, if this machine has a second CPU to run it on.
        init(_ body: @escaping @Sendable () throws -> T) {
            let slot = slot
            work = Work(count: 1, chunk: 1) { _, _ in slot.result = Result { try body() } }
            // Without a helper (none could be started) nothing would ever take it off the queue.
            if usableCPUs > 1 { jobs.post(work, copies: min(1, prepare(threads: 2))) }
        }

        /// The result, computed here if no helper has begun it yet (it started late, or there is none).
        func value() throws -> T {
            work.drain(worker: 0)
            work.waitUntilDone()
            return try slot.result!.get()
        }
    }

    static let usableCPUs = Int(cld_usable_cpus())

    private static let helpers = Mutex(0)
    private static let jobs = Jobs()

    /// What the helpers are asked to join; each copy of a work wakes one helper.
    private final class Jobs: Sendable {
        private let queue = Mutex<[Work]>([])
        private let posted = DispatchSemaphore(value: 0)

        func post(_ work: Work, copies: Int) {
            guard copies > 0 else { return }
            queue.withLock { $0.append(contentsOf: repeatElement(work, count: copies)) }
            for _ in 0..<copies { posted.signal() }
        }

        func serve() -> Never {
            while true {
                posted.wait()
                let work = queue.withLock { $0.removeFirst() }
                work.drain(worker: work.joined.wrappingAdd(1, ordering: .relaxed).newValue)
            }
        }
    }

    private final class Work: Sendable {
        let count: Int
        let chunk: Int
        let body: @Sendable (Int, Range<Int>) -> Void
        let next = Atomic<Int>(0)
        /// Helpers that joined so far; each is given the next worker number.
        let joined = Atomic<Int>(0)
        let unfinished: Atomic<Int>
        let finished = DispatchSemaphore(value: 0)

        init(count: Int, chunk: Int, body: @escaping @Sendable (Int, Range<Int>) -> Void) {
            self.count = count
            self.chunk = chunk
            self.body = body
            unfinished = Atomic(count)
        }

        func drain(worker: Int) {
            while true {
                let start = next.wrappingAdd(chunk, ordering: .relaxed).oldValue
                guard start < count else { return }
                let end = min(count, start + chunk)
                body(worker, start..<end)
                if unfinished.subtract(end - start, ordering: .acquiringAndReleasing).newValue == 0, worker != 0 {
                    finished.signal()
                }
            }
        }

        /// Every range has been taken once the calling thread's drain returns: this waits
        /// only for ranges that helpers are still working on.
        func waitUntilDone() {
            if unfinished.load(ordering: .acquiring) > 0 { finished.wait() }
        }
    }
}
