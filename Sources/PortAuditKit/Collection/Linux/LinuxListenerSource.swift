#if canImport(Glibc)
import Glibc
#endif
import Foundation
import CLinuxDiag

/// Listeners of the network namespaces of this machine, read from the Linux kernel.
public struct LinuxListenerSource: ListenerSource {
    public enum Enumeration: String, Sendable, CaseIterable {
        /// netlink sock_diag, and /proc/net for any table netlink refuses.
        case auto
        case netlink
        /// netlink with one SOCK_DIAG_BY_FAMILY request per table: what `netlink` falls back
        /// to when the kernel refuses the one request for TCP of both families.
        case netlinkByFamily = "netlink-by-family"
        case procfs
    }

    public var enumeration: Enumeration
    public var threads: Int
    public var procRoot: String
    /// Count established connections per listener (for `usage`); `now` does not need them.
    public var countsConnections = true
    /// Which network namespaces to read; every one by default (as root).
    public var namespaces: NamespaceSelection

    public init(enumeration: Enumeration = .auto, threads: Int = min(2, max(1, Int(cld_usable_cpus()))),
                namespaces: NamespaceSelection = .all) {
        self.enumeration = enumeration
        self.threads = threads
        self.procRoot = "/proc"
        self.namespaces = namespaces
    }

    public func observe() throws -> Observation {
        try observe(knownHolders: { .none })
    }

    public func observe(knownHolders: () throws -> KnownHolders) throws -> Observation {
        // Started now, they are ready by the time the descriptors are read (see Parallel).
        Parallel.prepare(threads: threads)
        var errors: [String] = []
        let procFD = open(procRoot, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard procFD >= 0 else {
            throw CollectionError.enumeration("cannot open \(procRoot): \(ProcFiles.errorDescription(errno))")
        }
        defer { close(procFD) }
        let pids = DescriptorWalk.allPIDs(procFD: procFD)
        let collected = try enumerateNamespaces(pids: pids, errors: &errors)
        let raw = collected.sockets

        // All but the holders, done before waiting for the known ones (a small snapshot waits
        // for the store to be opened).
        var base = Observation(host: Self.host(), netnsInode: Self.netnsInode(), asRoot: geteuid() == 0,
                               source: collected.source, sockets: [], errors: [], processNames: [:], fullWalk: false)
        base.namespaces = collected.read
        base.unreadNamespaces = collected.unread
        base.namespacesComplete = collected.complete
        if let established = collected.established {
            let own = raw.filter { ($0.netns == 0 || $0.netns == base.netnsInode) && $0.key.proto == .tcp }
            base.connections = ConnectionCounter.attribute(established: established, to: own.map(\.key))
        }
        func observation(_ sockets: [ListeningSocket], names: [ProcessIdentity: String], fullWalk: Bool) -> Observation {
            var observation = base
            observation.sockets = sockets
            observation.errors = errors
            observation.processNames = names
            observation.fullWalk = fullWalk
            return observation
        }

        let known = try knownHolders()
        if !known.fullWalkDue,
           let confirmed = HolderConfirmation.confirm(raw, known: known, procFD: procFD, threads: threads) {
            return observation(confirmed.sockets, names: confirmed.names, fullWalk: false)
        }

        let wanted = Set(raw.map(\.inode))
        let walk = DescriptorWalk.walk(procFD: procFD, pids: pids, wanted: wanted,
                                       skippingKernelThreadsAmong: DescriptorWalk.kernelThreadCandidates(procFD: procFD), threads: threads)
        if !walk.deniedPIDs.isEmpty {
            errors.append("descriptors of \(walk.deniedPIDs.count) process(es) not readable (permission denied): pid \(walk.deniedPIDs.sorted().prefix(10).map(String.init).joined(separator: ", "))")
        }

        // A holder is identified by its start time too; read it once per pid.
        var identities: [Int32: ProcessIdentity] = [:]
        var names: [ProcessIdentity: String] = [:]
        var vanished = Set(walk.vanishedPIDs)
        for pid in Set(walk.holders.values.joined().map(\.pid)) {
            if let stat = ProcFiles.read("\(pid)/stat", relativeTo: procFD).flatMap({ ProcStat(bytes: $0) }) {
                let identity = ProcessIdentity(pid: pid, startTicks: stat.startTicks)
                identities[pid] = identity
                names[identity] = stat.name
            } else {
                vanished.insert(pid)
            }
        }

        let sockets = raw.map { socket -> ListeningSocket in
            let holders = (walk.holders[socket.inode] ?? []).compactMap { holder in
                identities[holder.pid].map { SocketHolder(process: $0, fd: holder.fd) }
            }.sorted()
            var reason: String?
            if holders.isEmpty {
                if !walk.deniedPIDs.isEmpty {
                    reason = UnattributedReason.permissionDenied
                } else if !vanished.isEmpty {
                    reason = UnattributedReason.processExited
                } else {
                    reason = UnattributedReason.noProcess
                }
            }
            return ListeningSocket(key: socket.key, inode: socket.inode, uid: socket.uid,
                                   holders: holders, unattributedReason: reason, netns: socket.netns,
                                   acceptQueue: socket.key.proto == .tcp ? socket.receiveQueue : 0)
        }
        return observation(sockets, names: names, fullWalk: true)
    }

    /// What the tables of the namespace this thread is in hold.
    struct TableContents {
        var sockets: [RawSocket] = []
        /// How they were enumerated: "netlink", "procfs" or both joined by "+".
        var source = ""
        /// Local ends of established TCP connections, when asked for.
        var established: [ListenerKey]?
    }

    /// The listening sockets of the current namespace; with `established`, from the same
    /// netlink requests or /proc/net reads, the established TCP connections (for `usage`).
    func enumerate(errors: inout [String], established wantEstablished: Bool = false) throws -> TableContents {
        var contents = TableContents()
        var sources = Set<String>()
        var established: [ListenerKey] = []
        let tcpStates = 1 << UInt32(SocketTable.tcpListen) | (wantEstablished ? ConnectionCounter.establishedMask : 0)
        func take(_ found: [(socket: RawSocket, state: UInt8)], listening: UInt8) {
            for (socket, state) in found {
                if state == listening { contents.sockets.append(socket) } else { established.append(socket.key) }
            }
        }
        var tables = SocketTable.all
        // A refusal here is silent: the per-family requests below answer the same.
        if enumeration == .auto || enumeration == .netlink, let tcp = try? SockDiag.dumpTCP(states: tcpStates) {
            take(tcp, listening: SocketTable.tcpListen)
            sources.insert("netlink")
            tables.removeAll { $0.proto == .tcp }
        }
        for table in tables {
            if enumeration != .procfs {
                do {
                    take(try SockDiag.dump(table, states: table.proto == .tcp ? tcpStates : nil), listening: table.listeningState)
                    sources.insert("netlink")
                    continue
                } catch {
                    if enumeration != .auto { throw CollectionError.enumeration("\(error)") }
                    errors.append("\(error); read /proc/net/\(table.procName) instead")
                }
            }
            let path = "\(procRoot)/net/\(table.procName)"
            guard let text = ProcFiles.readString(path) else {
                let code = errno
                // A kernel without IPv6 has no tcp6/udp6: nothing listens there.
                if code == ENOENT && table.ipv6 { continue }
                throw CollectionError.enumeration("cannot read \(path): \(ProcFiles.errorDescription(code))")
            }
            let parsed = ProcNetParser.parse(text, table: table, established: wantEstablished)
            if !parsed.malformed.isEmpty {
                errors.append("\(path): \(parsed.malformed.count) malformed line(s) skipped")
            }
            contents.sockets += parsed.sockets
            established += parsed.established
            sources.insert("procfs")
        }
        contents.source = sources.sorted().joined(separator: "+")
        if wantEstablished { contents.established = established }
        return contents
    }

    public func describe(_ processes: some Collection<ProcessIdentity>) -> [ProcessIdentity: ProcessDetails] {
        let bootTime = Self.bootTime()
        let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
        var users = UserNames()
        var details: [ProcessIdentity: ProcessDetails] = [:]
        for identity in processes {
            let base = "/proc/\(identity.pid)"
            guard let procStat = ProcFiles.readString(base + "/stat").flatMap(ProcStat.init),
                  procStat.startTicks == identity.startTicks
            else { continue }  // exited, or its pid already reused
            var info = stat_struct()
            let uid: UInt32? = stat(base, &info) == 0 ? info.st_uid : nil
            let cmdline = ProcFiles.read(base + "/cmdline").map(Self.commandLine)
            details[identity] = ProcessDetails(
                identity: identity,
                startedAt: Date(timeIntervalSince1970: bootTime + Double(procStat.startTicks) / ticksPerSecond),
                ppid: procStat.ppid,
                name: procStat.name,
                exe: ProcFiles.readLink(base + "/exe"),
                cmdline: cmdline,
                uid: uid,
                user: uid.flatMap { users.name(of: $0) },
                container: ProcFiles.readString(base + "/cgroup").flatMap(ContainerCgroup.parse))
        }
        return details
    }

    /// NUL-separated arguments as one line.
    static func commandLine(_ bytes: [UInt8]) -> String {
        var trimmed = bytes[...]
        while trimmed.last == 0 { trimmed = trimmed.dropLast() }
        return String(decoding: trimmed.map { $0 == 0 ? UInt8(ascii: " ") : $0 }, as: UTF8.self)
    }

    static func host() -> HostIdentity {
        var name = [CChar](repeating: 0, count: 256)
        let hostname = gethostname(&name, name.count) == 0 ? String(nulTerminated: name) : ""
        let trim = { (s: String?) in s?.trimmingWhitespace() ?? "" }
        return HostIdentity(hostname: hostname,
                            machineID: trim(ProcFiles.readString("/etc/machine-id")),
                            bootID: trim(ProcFiles.readString("/proc/sys/kernel/random/boot_id")))
    }

    /// The inode that names this process's network namespace.
    static func netnsInode() -> UInt64 {
        var info = stat_struct()
        return stat("/proc/self/ns/net", &info) == 0 ? UInt64(info.st_ino) : 0
    }

    /// Seconds since the epoch at boot, from the btime line of /proc/stat.
    static func bootTime() -> Double {
        guard let text = ProcFiles.readString("/proc/stat") else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("btime ") {
            return Double(line.dropFirst(6)) ?? 0
        }
        return 0
    }
}

typealias stat_struct = stat

public enum UnattributedReason {
    /// Some processes' descriptors could not be read; the holder may be among them.
    public static let permissionDenied = "permission-denied"
    /// A process holding it exited while the snapshot was being taken.
    public static let processExited = "process-exited"
    /// Every process was read and none holds it: a kernel-owned socket.
    public static let noProcess = "no-process"
}

public enum CollectionError: Error, CustomStringConvertible {
    case enumeration(String)
    public var description: String {
        switch self {
        case .enumeration(let message): "cannot list sockets: \(message)"
        }
    }
}

/// getpwuid_r with a cache: many holders share a few users.
struct UserNames {
    private var cache: [UInt32: String?] = [:]

    mutating func name(of uid: UInt32) -> String? {
        if let known = cache[uid] { return known }
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        let name: String? = getpwuid_r(uid, &entry, &buffer, buffer.count, &result) == 0 && result != nil
            ? String(cString: entry.pw_name) : nil
        cache[uid] = name
        return name
    }
}
