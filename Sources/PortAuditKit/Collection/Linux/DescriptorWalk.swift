#if canImport(Glibc)
import Glibc
#endif
import Dispatch

/// Finds which processes hold which socket inodes by reading every /proc/<pid>/fd link:
/// the only way Linux tells. One openat of the fd directory per process, then one
/// readlinkat per descriptor relative to it (no path building), split across threads.
struct DescriptorWalk {
    struct Result {
        /// inode → (pid, fd) of every descriptor that refers to it.
        var holders: [UInt64: [(pid: Int32, fd: Int32)]] = [:]
        /// Processes whose descriptors could not be read for lack of permission.
        var deniedPIDs: [Int32] = []
        /// Processes that exited while being read.
        var vanishedPIDs: [Int32] = []
    }

    /// Every numeric entry of /proc.
    static func allPIDs() -> [Int32] {
        guard let dir = opendir("/proc") else { return [] }
        defer { closedir(dir) }
        var pids: [Int32] = []
        while let entry = readdir(dir) {
            let pid = withUnsafeBytes(of: entry.pointee.d_name) { parsePositive($0) }
            if let pid { pids.append(Int32(truncatingIfNeeded: pid)) }
        }
        return pids
    }

    static func walk(pids: [Int32], wanted: Set<UInt64>, threads: Int) -> Result {
        let workers = max(1, min(threads, pids.count / 64 + 1))
        if workers == 1 { return walk(pids[...], wanted: wanted) }
        let chunk = (pids.count + workers - 1) / workers
        let parts = UnsafeMutableBufferPointer<Result>.allocate(capacity: workers)
        parts.initialize(repeating: Result())
        defer { parts.deinitialize(); parts.deallocate() }
        nonisolated(unsafe) let shared = parts
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            let slice = pids[min(pids.count, worker * chunk)..<min(pids.count, (worker + 1) * chunk)]
            shared[worker] = walk(slice, wanted: wanted)
        }
        var merged = Result()
        for part in parts {
            merged.holders.merge(part.holders) { $0 + $1 }
            merged.deniedPIDs += part.deniedPIDs
            merged.vanishedPIDs += part.vanishedPIDs
        }
        return merged
    }

    private static func walk(_ pids: ArraySlice<Int32>, wanted: Set<UInt64>) -> Result {
        var result = Result()
        var link = [UInt8](repeating: 0, count: 64)
        for pid in pids {
            let dirFD = open("/proc/\(pid)/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            if dirFD < 0 {
                if errno == EACCES || errno == EPERM { result.deniedPIDs.append(pid) } else { result.vanishedPIDs.append(pid) }
                continue
            }
            guard let dir = fdopendir(dirFD) else {
                close(dirFD)
                continue
            }
            var denied = false
            while let entry = readdir(dir) {
                let fdNumber = withUnsafeBytes(of: entry.pointee.d_name) { parsePositive($0) }
                guard let fdNumber else { continue }
                let n = link.withUnsafeMutableBytes { buffer in
                    withUnsafeBytes(of: entry.pointee.d_name) { name in
                        readlinkat(dirFD, name.baseAddress!.assumingMemoryBound(to: CChar.self),
                                   buffer.baseAddress!.assumingMemoryBound(to: CChar.self), buffer.count)
                    }
                }
                if n < 0 && (errno == EACCES || errno == EPERM) { denied = true }
                guard n > 0, let inode = socketInode(link[0..<n]), wanted.contains(inode) else { continue }
                result.holders[inode, default: []].append((pid, Int32(truncatingIfNeeded: fdNumber)))
            }
            closedir(dir)
            // Listing a directory can be allowed where reading its links is not (pid 1 in some sandboxes).
            if denied { result.deniedPIDs.append(pid) }
        }
        return result
    }

    /// "socket:[12345]" → 12345.
    static func socketInode(_ link: ArraySlice<UInt8>) -> UInt64? {
        let prefix: [UInt8] = Array("socket:[".utf8)
        guard link.count > prefix.count + 1, link.starts(with: prefix), link.last == UInt8(ascii: "]") else { return nil }
        var value: UInt64 = 0
        for byte in link.dropFirst(prefix.count).dropLast() {
            guard byte >= 48 && byte <= 57 else { return nil }
            value = value &* 10 &+ UInt64(byte - 48)
        }
        return value
    }

    /// A NUL-terminated all-digit name as a number.
    private static func parsePositive(_ name: UnsafeRawBufferPointer) -> UInt64? {
        var value: UInt64 = 0
        var digits = 0
        for byte in name {
            if byte == 0 { break }
            guard byte >= 48 && byte <= 57 else { return nil }
            value = value &* 10 &+ UInt64(byte - 48)
            digits += 1
        }
        return digits > 0 ? value : nil
    }
}
