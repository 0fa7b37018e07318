#if canImport(Glibc)
import Glibc
#endif

/// Small, allocation-light readers for /proc, where Foundation's file APIs cost more
/// than the read itself.
enum ProcFiles {
    /// The whole content of a small file, or nil with errno set when it cannot be read.
    static func read(_ path: String, relativeTo directory: Int32 = AT_FDCWD, limit: Int = 1 << 20) -> [UInt8]? {
        let fd = openat(directory, path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        // Read on the stack, not into a zeroed array: a snapshot reads a `stat` file per holder process.
        return withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 4096) { chunk -> [UInt8]? in
            var bytes: [UInt8] = []
            while bytes.count < limit {
                let n = Glibc.read(fd, chunk.baseAddress, chunk.count)
                if n < 0 {
                    if errno == EINTR { continue }
                    return nil
                }
                if n == 0 { break }
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: chunk[..<n]))
            }
            return bytes
        }
    }

    static func readString(_ path: String, relativeTo directory: Int32 = AT_FDCWD) -> String? {
        read(path, relativeTo: directory).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The target of a symbolic link, or nil with errno set.
    static func readLink(_ path: String, relativeTo directory: Int32 = AT_FDCWD) -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlinkat(directory, path, &buffer, buffer.count)
        guard n >= 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The absolute path with every link and `..` resolved (realpath), or nil with errno set.
    static func realPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    static func errorDescription(_ code: Int32) -> String {
        String(cString: strerror(code))
    }
}
