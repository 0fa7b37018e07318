#if canImport(Glibc)
import Glibc
#endif
import CLinuxDiag

/// Finds which processes hold which socket inodes by reading every /proc/<pid>/fd link:
/// the only way Linux tells. /proc is opened once; per process one openat of `PID/fd`
/// relative to it, getdents64 into a reused buffer, then one readlinkat per descriptor
/// relative to the fd directory (no path building), split across threads.
struct DescriptorWalk {
    struct Result {
        /// inode → (pid, fd) of every descriptor that refers to it.
        var holders: [UInt64: [(pid: Int32, fd: Int32)]] = [:]
        /// Processes whose descriptors could not be read for lack of permission.
        var deniedPIDs: [Int32] = []
        /// Processes that exited while being read.
        var vanishedPIDs: [Int32] = []
        /// Processes not read: they had no address space (kernel threads), or had exited.
        var skippedPIDs: [Int32] = []

        mutating func add(_ other: Result) {
            holders.merge(other.holders) { $0 + $1 }
            deniedPIDs += other.deniedPIDs
            vanishedPIDs += other.vanishedPIDs
            skippedPIDs += other.skippedPIDs
        }
    }

    /// Every numeric entry of /proc.
    static func allPIDs(procFD: Int32) -> [Int32] {
        let dir = openat(procFD, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dir >= 0 else { return [] }
        defer { close(dir) }
        var pids: [Int32] = []
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 32 << 10, alignment: 8)
        defer { buffer.deallocate() }
        forEachEntry(of: dir, buffer: buffer) { name in
            if let pid = parseNumber(name) { pids.append(Int32(truncatingIfNeeded: pid)) }
            return true
        }
        return pids
    }

    /// kthreadd (pid 2) and its children, from one read of its `children` file: the processes
    /// that may be kernel threads (see `walk`). Empty where pid 2 has an address space (in a
    /// pid namespace it is an ordinary process) or the file cannot be read (a kernel without
    /// CONFIG_PROC_CHILDREN).
    static func kernelThreadCandidates(procFD: Int32) -> Set<Int32> {
        var byte: CChar = 0
        guard exeLinkError(of: 2, procFD: procFD, buffer: &byte) == ENOENT,
              let children = ProcFiles.read("2/task/2/children", relativeTo: procFD) else { return [] }
        return Set(childPIDs(children) + [2])
    }

    /// The pids of a `children` file: decimal numbers separated by spaces; anything else is skipped.
    static func childPIDs(_ bytes: [UInt8]) -> [Int32] {
        bytes.split { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\n") }.compactMap { token in
            guard token.count <= 10, token.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
            return Int32(String(decoding: token, as: UTF8.self))
        }
    }

    /// 0 when the process's `exe` link can be read, else why not: ENOENT when it has no
    /// address space or has exited; EACCES or EPERM when the kernel refuses it, by the same
    /// check that guards the links in its fd directory.
    private static func exeLinkError(of pid: Int32, procFD: Int32, buffer: UnsafeMutablePointer<CChar>) -> Int32 {
        readlinkat(procFD, "\(pid)/exe", buffer, 1) < 0 ? errno : 0
    }

    /// The holders of the `wanted` socket inodes among `pids`. A process in `candidates` (see
    /// `kernelThreadCandidates`) is first asked for its `exe` link, one readlinkat instead of an
    /// openat, two getdents64 and a close: without one it has no address space and is not
    /// read. A kernel thread never has one. Nor has a program the kernel starts (a core dump
    /// pipe handler, a cgroup release agent), kthreadd's child too, before it execs, while it
    /// runs only kernel code, which opens no socket; nor, for an instant as it exits, one whose
    /// address space is gone and files not yet closed. One that exited meanwhile counts as
    /// skipped too. A refused `exe` says its descriptors are refused as well.
    static func walk(procFD: Int32, pids: [Int32], wanted: Set<UInt64>, skippingKernelThreadsAmong candidates: Set<Int32> = [],
                     threads: Int) -> Result {
        // A thread pays for itself only with enough processes to split.
        let workers = max(1, min(threads, pids.count / 64 + 1))
        if workers == 1 { return walk(procFD: procFD, pids[...], wanted: wanted, candidates: candidates) }
        let parts = UnsafeMutableBufferPointer<Result>.allocate(capacity: workers)
        parts.initialize(repeating: Result())
        defer { parts.deinitialize(); parts.deallocate() }
        nonisolated(unsafe) let shared = parts
        Parallel.forEach(count: pids.count, chunk: 16, threads: workers) { worker, range in
            shared[worker].add(walk(procFD: procFD, pids[range], wanted: wanted, candidates: candidates))
        }
        return parts.reduce(into: Result()) { $0.add($1) }
    }

    private static func walk(procFD: Int32, _ pids: ArraySlice<Int32>, wanted: Set<UInt64>, candidates: Set<Int32>) -> Result {
        var result = Result()
        let link = UnsafeMutablePointer<CChar>.allocate(capacity: 64)
        defer { link.deallocate() }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 8)
        defer { buffer.deallocate() }
        for pid in pids {
            if candidates.contains(pid) {
                switch exeLinkError(of: pid, procFD: procFD, buffer: link) {
                case ENOENT: result.skippedPIDs.append(pid); continue
                case EACCES, EPERM: result.deniedPIDs.append(pid); continue
                default: break
                }
            }
            let dirFD = openat(procFD, "\(pid)/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if dirFD < 0 {
                if errno == EACCES || errno == EPERM { result.deniedPIDs.append(pid) } else { result.vanishedPIDs.append(pid) }
                continue
            }
            var denied = false
            forEachEntry(of: dirFD, buffer: buffer) { name in
                guard let fdNumber = parseNumber(name) else { return true }
                let n = readlinkat(dirFD, name, link, 64)
                // The kernel allows a process's links, or not, as a whole (a ptrace access
                // check): the first refusal says the rest.
                if n < 0 && (errno == EACCES || errno == EPERM) {
                    denied = true
                    return false
                }
                guard n > 0, let inode = socketInode(UnsafeRawBufferPointer(start: link, count: n)),
                      wanted.contains(inode) else { return true }
                result.holders[inode, default: []].append((pid, Int32(truncatingIfNeeded: fdNumber)))
                return true
            }
            close(dirFD)
            // Listing a directory can be allowed where reading its links is not (pid 1 in some sandboxes).
            if denied { result.deniedPIDs.append(pid) }
        }
        return result
    }

    /// Calls `body` with the NUL-terminated name of every entry of the open directory `fd`,
    /// until it returns false.
    private static func forEachEntry(of fd: Int32, buffer: UnsafeMutableRawBufferPointer,
                                     _ body: (UnsafePointer<CChar>) -> Bool) {
        while true {
            let n = cld_getdents64(fd, buffer.baseAddress, UInt(buffer.count))
            if n <= 0 { return }
            var offset = 0
            while offset < n {
                // struct linux_dirent64: u64 d_ino, s64 d_off, u16 d_reclen, u8 d_type, char d_name[].
                let record = buffer.baseAddress! + offset
                let length = Int(record.loadUnaligned(fromByteOffset: 16, as: UInt16.self))
                guard body((record + 19).assumingMemoryBound(to: CChar.self)) else { return }
                offset += length
            }
        }
    }

    /// "socket:[12345]" → 12345.
    static func socketInode(_ link: UnsafeRawBufferPointer) -> UInt64? {
        bracketedNumber(link, after: "socket:[")
    }

    /// The number in a /proc link such as "socket:[12345]" or "net:[4026531840]", given
    /// everything before it; nil for any other link.
    static func bracketedNumber(_ link: UnsafeRawBufferPointer, after prefix: StaticString) -> UInt64? {
        let start = prefix.utf8CodeUnitCount
        guard link.count > start + 1, link[link.count - 1] == UInt8(ascii: "]"),
              memcmp(prefix.utf8Start, link.baseAddress!, start) == 0 else { return nil }
        var value: UInt64 = 0
        for index in start..<(link.count - 1) {
            let byte = link[index]
            guard byte >= 48 && byte <= 57 else { return nil }
            value = value &* 10 &+ UInt64(byte - 48)
        }
        return value
    }

    static func socketInode(_ link: ArraySlice<UInt8>) -> UInt64? {
        Array(link).withUnsafeBytes { socketInode($0) }
    }

    /// A NUL-terminated all-digit name as a number.
    static func parseNumber(_ name: UnsafePointer<CChar>) -> UInt64? {
        var value: UInt64 = 0
        var index = 0
        while true {
            let byte = UInt8(bitPattern: name[index])
            if byte == 0 { break }
            guard byte >= 48 && byte <= 57 else { return nil }
            value = value &* 10 &+ UInt64(byte - 48)
            index += 1
        }
        return index > 0 ? value : nil
    }
}
