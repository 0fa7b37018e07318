#if canImport(Glibc)
import Glibc
#endif

/// SIGTERM and SIGINT as a request to stop, which a loop waits on between checks.
///
/// The handler only writes a byte to a pipe (async-signal-safe); the loop notices it in
/// `wait` or between two steps, so a signal never cuts a snapshot short: the store sees
/// whole transactions only.
public final class StopSignal: @unchecked Sendable {
    /// The pipe the handler writes to; one per process, as signal handlers are.
    nonisolated(unsafe) private static var writeEnd: Int32 = -1
    private let readEnd: Int32
    private var stopped = false

    /// Installs the handlers; call once, before the loop.
    public init() throws {
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else {
            throw Failure(description: "cannot create a pipe for signals: \(ProcFiles.errorDescription(errno))")
        }
        // Non-blocking, so a handler can never block on a full pipe; kept from children.
        for end in ends {
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
            _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
        }
        readEnd = ends[0]
        Self.writeEnd = ends[1]
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in
            let saved = errno
            var byte: UInt8 = 1
            _ = write(StopSignal.writeEnd, &byte, 1)
            errno = saved
        }
        // Restart interrupted system calls: the loop finishes what it is doing, then stops.
        action.sa_flags = SA_RESTART
        sigemptyset(&action.sa_mask)
        for signal in [SIGTERM, SIGINT] {
            guard sigaction(signal, &action, nil) == 0 else {
                throw Failure(description: "cannot handle signal \(signal): \(ProcFiles.errorDescription(errno))")
            }
        }
        // A parent may have started us with them blocked (the mask is inherited across
        // exec): a service manager's stop must still reach us. Threads started later
        // inherit this thread's mask.
        var unblock = sigset_t()
        sigemptyset(&unblock)
        sigaddset(&unblock, SIGTERM)
        sigaddset(&unblock, SIGINT)
        pthread_sigmask(SIG_UNBLOCK, &unblock, nil)
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Whether a stop was requested, without waiting.
    public var isRequested: Bool { wait(seconds: 0) }

    /// Waits up to `seconds`; true as soon as a stop is requested.
    public func wait(seconds: Double) -> Bool {
        if stopped { return true }
        var poller = pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)
        let milliseconds = Int32(max(0, min(seconds * 1000, Double(Int32.max))).rounded(.up))
        while true {
            let ready = poll(&poller, 1, milliseconds)
            if ready < 0 && errno == EINTR { continue }
            if ready > 0 { stopped = true }
            return stopped
        }
    }
}
