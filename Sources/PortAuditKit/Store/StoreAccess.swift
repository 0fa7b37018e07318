import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Who may open the store, and how root opens it safely.
enum StoreAccess {
    /// The path root should hand to SQLite. Root writes where other users may have
    /// planted a symbolic link (a shared directory, a directory they own): a link owned by
    /// anyone but root is refused, one owned by root is resolved, and a missing store is
    /// created here with O_EXCL|O_NOFOLLOW so that no link can be slipped in before SQLite
    /// opens it. The journal files beside it are checked the same way.
    static func rootOpenPath(_ path: String, create: Bool) throws -> String {
        var resolved = path
        var info = stat()
        try refuseForeignLink(path)
        if lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFLNK {
            if let real = ProcFiles.realPath(path) {
                resolved = real
            } else if create, let target = ProcFiles.readLink(path) {
                // Root's own link to a store not created yet: create it where the link points.
                resolved = target.hasPrefix("/") ? target : ((path as NSString).deletingLastPathComponent as NSString).appendingPathComponent(target)
            } else {
                throw StoreError.cannotOpen(path: path, detail: "it is a symbolic link to a missing file")
            }
        }
        for suffix in ["-wal", "-shm", "-journal"] {
            var journal = stat()
            if lstat(resolved + suffix, &journal) == 0, (journal.st_mode & S_IFMT) == S_IFLNK {
                throw StoreError.cannotOpen(path: path, detail: "\(resolved + suffix) is a symbolic link; refusing to open the store beside it")
            }
        }
        if create && lstat(resolved, &info) != 0 && errno == ENOENT {
            let fd = open(resolved, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            if fd >= 0 {
                close(fd)
            } else {
                let code = errno
                // Another run creating the same new store is fine; a link slipped in is not.
                var now = stat()
                guard code == EEXIST, lstat(resolved, &now) == 0, (now.st_mode & S_IFMT) == S_IFREG else {
                    throw StoreError.cannotOpen(path: path, detail: code == EEXIST
                        ? "a symbolic link appeared at that path while it was being created; refusing to follow it"
                        : ProcFiles.errorDescription(code))
                }
            }
        }
        return resolved
    }

    /// Refuses `path` when it is a symbolic link owned by anyone but root.
    static func refuseForeignLink(_ path: String) throws {
        var info = stat()
        if lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFLNK, info.st_uid != 0 {
            throw StoreError.cannotOpen(path: path, detail: "it is a symbolic link owned by uid \(info.st_uid), not by root; refusing to follow it")
        }
    }

    /// Confirms, once SQLite has the file open, that no link was swapped in meanwhile.
    static func confirmNotLink(_ openPath: String, reported path: String) throws {
        var info = stat()
        if lstat(openPath, &info) == 0, (info.st_mode & S_IFMT) == S_IFLNK {
            throw StoreError.cannotOpen(path: path, detail: "it became a symbolic link while being opened; refusing it")
        }
    }
}

/// A group to let read the store, resolved before anything is created: an unknown one
/// must not leave a new directory behind.
public struct StoreGroup: Sendable {
    public let name: String
    let gid: gid_t

    /// `group` is a group name or a numeric gid.
    public init(_ group: String, for path: String) throws {
        var entry = group_t()
        var result: UnsafeMutablePointer<group_t>?
        var buffer = [CChar](repeating: 0, count: 16384)
        if getgrnam_r(group, &entry, &buffer, buffer.count, &result) == 0, result != nil {
            gid = entry.gr_gid
        } else if let number = UInt32(group) {
            gid = number
        } else {
            throw StoreError.cannotOpen(path: path, detail: "no group named \(group)")
        }
        name = group
    }
}

extension Store {
    /// Lets the members of `group` read the store: its files become 0640, group-owned by it,
    /// and so does its directory (0750), when the directory holds nothing but the store. A
    /// directory that holds other files (/tmp, a home, a shared one) is left as it is; the
    /// note returned then says when the group cannot reach the store through it.
    @discardableResult
    public func grantGroupRead(_ group: StoreGroup) throws -> String? {
        let parent = (path as NSString).deletingLastPathComponent
        let directory = parent.isEmpty ? "." : parent
        let name = (path as NSString).lastPathComponent
        let storeFiles = Set(["", "-wal", "-shm", "-journal"].map { name + $0 })
        let storeOnly = (try? FileManager.default.contentsOfDirectory(atPath: directory))?.allSatisfy(storeFiles.contains) ?? false
        var targets: [(String, mode_t)] = storeOnly ? [(directory, mode_t(0o750))] : []
        for file in [path, path + "-wal", path + "-shm"] where FileManager.default.fileExists(atPath: file) {
            targets.append((file, 0o640))
        }
        for (target, mode) in targets {
            guard chown(target, uid_t.max, group.gid) == 0, chmod(target, mode) == 0 else {
                throw StoreError.cannotOpen(path: path, detail: "cannot give group \(group.name) access to \(target): \(ProcFiles.errorDescription(errno))")
            }
        }
        var info = stat()
        guard !storeOnly, stat(directory, &info) == 0 else { return nil }
        let searchable = info.st_mode & S_IXOTH != 0 || (info.st_gid == group.gid && info.st_mode & S_IXGRP != 0)
        if searchable { return nil }
        return "group \(group.name) cannot reach the store: \(directory) holds other files, so portaudit left it as it is "
            + "(mode \(String(info.st_mode & 0o7777, radix: 8))); let the group search it, e.g. chgrp \(group.name) \(directory) && chmod g+x \(directory)"
    }
}

typealias group_t = group
