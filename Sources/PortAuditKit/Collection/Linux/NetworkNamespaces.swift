#if canImport(Glibc)
import Glibc
#endif
import CLinuxDiag
import Foundation

/// Finds the network namespaces in use and reads the listening sockets of each.
///
/// Socket inodes are global, so only the socket tables are read per namespace; the one
/// /proc/*/fd walk of LinuxListenerSource attributes holders in every namespace at once.
enum NetworkNamespaces {
    /// A namespace found on the machine, with a path that opens it.
    struct Found: Sendable {
        var namespace: NetworkNamespace
        /// /run/netns/NAME when it has a name (stable), else /proc/PID/ns/net of one member.
        var path: String
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// The namespace this process runs in: what "host" means.
    static func own() -> (inode: UInt64, device: UInt64)? {
        var info = stat()
        guard stat("/proc/self/ns/net", &info) == 0 else { return nil }
        return (UInt64(info.st_ino), UInt64(info.st_dev))
    }

    /// Every distinct namespace: those of running processes (/proc/*/ns/net) and those kept
    /// alive by a bind mount under /run/netns with no process in them. Needs root to see
    /// other users' processes.
    static func enumerate(pids: [Int32], runNetns: String = "/run/netns") -> [Found] {
        guard let own = own() else { return [] }
        var byInode: [UInt64: Found] = [:]
        var order: [UInt64] = []
        var info = stat()
        // The link's text names the namespace ("net:[4026531840]"): reading it costs a third
        // of a stat, which would open the namespace to look at its inode.
        var link = [UInt8](repeating: 0, count: 64)
        for pid in pids {
            let path = "/proc/\(pid)/ns/net"
            // Exited processes have none; other users' need root. Kernel threads have the first one.
            let count = link.withUnsafeMutableBytes { readlink(path, $0.baseAddress!.assumingMemoryBound(to: CChar.self), $0.count) }
            guard count > 0, let inode = link.withUnsafeBytes({
                DescriptorWalk.bracketedNumber(UnsafeRawBufferPointer(rebasing: $0.prefix(count)), after: "net:[")
            }) else { continue }
            if byInode[inode] == nil {
                byInode[inode] = Found(namespace: NetworkNamespace(inode: inode), path: path)
                order.append(inode)
            }
        }
        for name in namedFiles(runNetns) {
            let path = "\(runNetns)/\(name)"
            // A name whose bind mount is gone is a plain file on tmpfs: its device is not nsfs.
            guard stat(path, &info) == 0, UInt64(info.st_dev) == own.device else { continue }
            let inode = UInt64(info.st_ino)
            if byInode[inode] == nil { order.append(inode) }
            // Several names may point at one namespace; the first in name order is kept.
            if byInode[inode]?.namespace.name == nil {
                byInode[inode] = Found(namespace: NetworkNamespace(inode: inode, name: name), path: path)
            }
        }
        if byInode[own.inode] == nil {
            byInode[own.inode] = Found(namespace: NetworkNamespace(inode: own.inode), path: "/proc/self/ns/net")
            order.append(own.inode)
        }
        return order.compactMap { byInode[$0] }
    }

    private static func namedFiles(_ directory: String) -> [String] {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// Runs `body` on a thread of its own that has joined the namespace: setns changes
    /// only the calling thread, and that thread ends with `body`, so no other work ever
    /// runs in the wrong namespace. Sockets `body` creates (netlink) belong to it, and
    /// /proc/thread-self/net shows its tables.
    static func inside<T: Sendable>(_ found: Found, _ body: @escaping @Sendable () throws -> T) throws -> T {
        let fd = open(found.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw Failure(description: "cannot open network namespace \(label(found.namespace)) (\(found.path)): \(ProcFiles.errorDescription(errno))")
        }
        defer { close(fd) }
        // The member process may have exited and its pid been reused since enumeration.
        var info = stat()
        guard fstat(fd, &info) == 0, UInt64(info.st_ino) == found.namespace.inode else {
            throw Failure(description: "network namespace \(label(found.namespace)) is gone")
        }
        let outcome = Outcome<T>()
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            defer { done.signal() }
            if cld_setns_net(fd) != 0 {
                let code = errno
                outcome.value = Result<T, Error>.failure(Failure(description: "cannot enter network namespace \(label(found.namespace)): \(ProcFiles.errorDescription(code))"))
                return
            }
            outcome.value = Result { try body() }
        }
        thread.start()
        done.wait()
        return try outcome.value!.get()
    }

    /// What the namespace's thread hands back; the semaphore orders the accesses.
    private final class Outcome<T>: @unchecked Sendable {
        var value: Result<T, Error>?
    }

    /// "4026531840" or "4026532301 (blue)".
    static func label(_ namespace: NetworkNamespace) -> String {
        namespace.name.map { "\(namespace.inode) (\($0))" } ?? String(namespace.inode)
    }
}

extension LinuxListenerSource {
    /// The sockets of every selected namespace, each tagged with its namespace.
    struct NamespacedSockets {
        var sockets: [RawSocket] = []
        var source = ""
        /// Namespaces whose tables were read.
        var read: [NetworkNamespace] = []
        /// Namespaces found but not read (entering failed).
        var unread: Set<UInt64> = []
        /// Every namespace of the machine was looked for.
        var complete = false
        /// Local ends of the host namespace's established TCP connections, when counted.
        var established: [ListenerKey]?
    }

    func enumerateNamespaces(pids: [Int32], errors: inout [String]) throws -> NamespacedSockets {
        var result = NamespacedSockets()
        let ownInode = NetworkNamespaces.own()?.inode ?? 0
        let isRoot = geteuid() == 0
        var targets: [NetworkNamespaces.Found]
        switch namespaces {
        case .host:
            targets = []
        case .all:
            if isRoot {
                targets = NetworkNamespaces.enumerate(pids: pids)
                result.complete = true
            } else {
                targets = []
                errors.append("only portaudit's own network namespace was read: the others need root")
            }
        case .id:
            targets = isRoot ? NetworkNamespaces.enumerate(pids: pids).filter { namespaces.matches($0.namespace) } : []
            let ownMatches = namespaces.matches(NetworkNamespace(inode: ownInode))
            if targets.isEmpty && !ownMatches {
                throw CollectionError.enumeration("no network namespace \(namespaces) on this machine\(isRoot ? "" : " that a non-root user can read")")
            }
        }

        var sources = Set<String>()
        let hostName = targets.first { $0.namespace.inode == ownInode }?.namespace.name
        let readHost = namespaces == .host || namespaces == .all || targets.contains { $0.namespace.inode == ownInode }
            || namespaces.matches(NetworkNamespace(inode: ownInode))
        if readHost {
            // The host's own tables, read on this thread as before: a failure here fails the collection.
            let contents = try enumerate(errors: &errors, established: countsConnections)
            result.sockets += contents.sockets.map { var s = $0; s.netns = ownInode; return s }
            result.established = contents.established
            result.read.append(NetworkNamespace(inode: ownInode, name: hostName))
            sources.formUnion(contents.source.split(separator: "+").map(String.init))
        }
        for target in targets where target.namespace.inode != ownInode {
            var thread = self
            thread.procRoot = "/proc/thread-self"
            let inner = thread
            do {
                let (sockets, source, notes) = try NetworkNamespaces.inside(target) { () throws -> ([RawSocket], String, [String]) in
                    var notes: [String] = []
                    let contents = try inner.enumerate(errors: &notes)
                    return (contents.sockets, contents.source, notes)
                }
                let inode = target.namespace.inode
                result.sockets += sockets.map { var s = $0; s.netns = inode; return s }
                result.read.append(target.namespace)
                sources.formUnion(source.split(separator: "+").map(String.init))
                errors += notes.map { "netns \(NetworkNamespaces.label(target.namespace)): \($0)" }
            } catch {
                result.unread.insert(target.namespace.inode)
                errors.append("\(error)")
            }
        }
        result.source = sources.sorted().joined(separator: "+")
        return result
    }
}
