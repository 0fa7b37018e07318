#if canImport(Glibc)
import Glibc
#endif

/// Confirms the holders the store already knows instead of reading every descriptor of
/// every process: per holder process one read of `stat` (the start time proves the pid was
/// not reused) and one readlinkat per known descriptor. On a host with thousands of
/// processes and hundreds of thousands of open files this replaces the whole /proc walk.
///
/// It answers nil, and the caller walks, as soon as anything does not match: a socket
/// the store does not know, a holder that exited, a descriptor that now names another file.
enum HolderConfirmation {
    struct Confirmed {
        var sockets: [ListeningSocket]
        var names: [ProcessIdentity: String]
    }

    /// Reasons a socket may keep having no holder without a walk: nothing about them can
    /// change unless a process starts sharing the socket, which the periodic walk finds.
    static let stableReasons: Set<String> = [UnattributedReason.permissionDenied, UnattributedReason.noProcess]

    static func confirm(_ raw: [RawSocket], known: KnownHolders, procFD: Int32, threads: Int) -> Confirmed? {
        // Each socket's entry, looked up once; its links grouped by process, one lookup each.
        var entries: [KnownHolders.Socket] = []
        entries.reserveCapacity(raw.count)
        var expected: [Int32: (startTicks: UInt64, links: [(fd: Int32, inode: UInt64)])] = [:]
        for socket in raw {
            guard let entry = known.sockets[socket.inode] else { return nil }
            if entry.holders.isEmpty {
                guard let reason = entry.unattributedReason, stableReasons.contains(reason) else { return nil }
            }
            for holder in entry.holders {
                let link = (fd: holder.fd, inode: socket.inode)
                if let index = expected.index(forKey: holder.process.pid) {
                    guard expected.values[index].startTicks == holder.process.startTicks else { return nil }
                    expected.values[index].links.append(link)
                } else {
                    expected[holder.process.pid] = (holder.process.startTicks, [link])
                }
            }
            entries.append(entry)
        }

        let pids = Array(expected.keys)
        // Names read from stat, or nil for a process that failed; one slot per pid.
        let names = UnsafeMutableBufferPointer<String?>.allocate(capacity: pids.count)
        names.initialize(repeating: nil)
        defer { names.deinitialize(); names.deallocate() }
        nonisolated(unsafe) let slots = names
        let expectations = expected
        // A thread pays for itself only past a few hundred system calls: one per link, one stat per process.
        let calls = expectations.values.reduce(0) { $0 + $1.links.count + 1 }
        Parallel.forEach(count: pids.count, chunk: 4, threads: calls < 256 ? 1 : threads) { _, range in
            withUnsafeTemporaryAllocation(of: CChar.self, capacity: 64) { link in
                for index in range {
                    let pid = pids[index]
                    guard let expectation = expectations[pid] else { continue }
                    slots[index] = verify(pid: pid, expectation.startTicks, expectation.links, procFD: procFD, link: link.baseAddress!)
                }
            }
        }
        var processNames: [ProcessIdentity: String] = [:]
        processNames.reserveCapacity(pids.count)
        for (index, pid) in pids.enumerated() {
            guard let name = names[index] else { return nil }
            processNames[ProcessIdentity(pid: pid, startTicks: expected[pid]!.startTicks)] = name
        }

        let sockets = zip(raw, entries).map { socket, entry -> ListeningSocket in
            // Usually sorted already (as observations give them and open_state keeps them; rows read
            // from the history come in no order): checking allocates nothing.
            let holders = zip(entry.holders, entry.holders.dropFirst()).allSatisfy { $0 <= $1 } ? entry.holders : entry.holders.sorted()
            return ListeningSocket(key: socket.key, inode: socket.inode, uid: socket.uid,
                                   holders: holders,
                                   unattributedReason: entry.holders.isEmpty ? entry.unattributedReason : nil,
                                   netns: socket.netns, acceptQueue: socket.key.proto == .tcp ? socket.receiveQueue : 0)
        }
        return Confirmed(sockets: sockets, names: processNames)
    }

    /// The process's name when it is still the same process and every link still names its socket.
    private static func verify(pid: Int32, _ startTicks: UInt64, _ links: [(fd: Int32, inode: UInt64)],
                               procFD: Int32, link: UnsafeMutablePointer<CChar>) -> String? {
        guard let stat = ProcFiles.read("\(pid)/stat", relativeTo: procFD).flatMap({ ProcStat(bytes: $0) }),
              stat.startTicks == startTicks
        else { return nil }
        // Several links: one open of the fd directory makes each lookup one component long.
        let dirFD = links.count > 2 ? openat(procFD, "\(pid)/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : procFD
        if dirFD < 0 { return nil }
        defer { if dirFD != procFD { close(dirFD) } }
        for (fd, inode) in links {
            let path = dirFD == procFD ? "\(pid)/fd/\(fd)" : "\(fd)"
            let n = readlinkat(dirFD, path, link, 64)
            guard n > 0, DescriptorWalk.socketInode(UnsafeRawBufferPointer(start: link, count: n)) == inode else { return nil }
        }
        return stat.name
    }
}
