import Foundation

public enum TransportProtocol: String, Sendable, Codable, CaseIterable, Comparable {
    case tcp, udp
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}

/// A process as the kernel names it: pids are reused, so the start time is part of it.
public struct ProcessIdentity: Hashable, Sendable, Comparable {
    public var pid: Int32
    /// Clock ticks after boot (`starttime` of /proc/<pid>/stat).
    public var startTicks: UInt64

    public init(pid: Int32, startTicks: UInt64) {
        self.pid = pid
        self.startTicks = startTicks
    }

    public static func < (a: Self, b: Self) -> Bool {
        (a.pid, a.startTicks) < (b.pid, b.startTicks)
    }
}

/// What is known about a holder process beyond its identity.
public struct ProcessDetails: Hashable, Sendable {
    public var identity: ProcessIdentity
    public var startedAt: Date
    public var ppid: Int32?
    public var name: String
    public var exe: String?
    public var cmdline: String?
    public var uid: UInt32?
    public var user: String?
    /// The container it runs in, from its cgroup path; nil outside containers.
    public var container: ContainerIdentity?

    public init(identity: ProcessIdentity, startedAt: Date, ppid: Int32?, name: String,
                exe: String?, cmdline: String?, uid: UInt32?, user: String?, container: ContainerIdentity? = nil) {
        self.identity = identity
        self.startedAt = startedAt
        self.ppid = ppid
        self.name = name
        self.exe = exe
        self.cmdline = cmdline
        self.uid = uid
        self.user = user
        self.container = container
    }
}

/// One descriptor of one process that refers to a socket.
public struct SocketHolder: Hashable, Sendable, Comparable {
    public var process: ProcessIdentity
    public var fd: Int32

    public init(process: ProcessIdentity, fd: Int32) {
        self.process = process
        self.fd = fd
    }

    public static func < (a: Self, b: Self) -> Bool { (a.process, a.fd) < (b.process, b.fd) }
}

/// Where a listener is: the identity that history is kept for.
public struct ListenerKey: Hashable, Sendable, Comparable {
    public var proto: TransportProtocol
    public var address: String
    public var port: UInt16
    /// Interface the socket is bound to with SO_BINDTODEVICE, "" when none.
    public var interface: String

    public init(proto: TransportProtocol, address: String, port: UInt16, interface: String = "") {
        self.proto = proto
        self.address = address
        self.port = port
        self.interface = interface
    }

    /// By port, protocol name, address, interface. Field by field: a tuple of the four was
    /// built for both sides at every comparison, though ports nearly always decide (sorting
    /// the 1,000 listeners of `now` took 4.0 ms so, 2.8 ms now).
    public static func < (a: Self, b: Self) -> Bool {
        if a.port != b.port { return a.port < b.port }
        if a.proto != b.proto { return a.proto.rawValue < b.proto.rawValue }
        if a.address != b.address { return a.address < b.address }
        return a.interface < b.interface
    }

    /// One word: the synthesized hash ran SipHash over three strings ("tcp" among them),
    /// 3 % of an unchanged 1,000-socket snapshot's instructions.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(stableHash)
    }

    /// FNV-1a over the address, the interface and the port, with the protocol: the same in
    /// every run (Hasher is seeded per process), so digests kept in the store can be made of it.
    var stableHash: UInt64 {
        var folded = StableHash.fold(address, into: StableHash.seed)
        folded = StableHash.step(folded, 0xff)  // so that "a" + "b" differs from "ab" + ""
        folded = StableHash.fold(interface, into: folded)
        return StableHash.step(folded, proto == .tcp ? UInt64(port) : UInt64(port) | 0x1_0000)
    }
}

/// One kernel socket in LISTEN (TCP) or bound and unconnected (UDP).
public struct ListeningSocket: Hashable, Sendable {
    public var key: ListenerKey
    public var inode: UInt64
    /// The uid that created the socket, as the kernel reports it.
    public var uid: UInt32
    /// Every descriptor that refers to this socket; several after fork.
    public var holders: [SocketHolder]
    /// Why `holders` is empty, when it is.
    public var unattributedReason: String?
    /// The reason the store keeps for a socket without holders: the one given, or `no-process`.
    var storedUnattributedReason: String { unattributedReason ?? UnattributedReason.noProcess }
    /// For TCP, connections waiting to be accepted; 0 for UDP.
    public var acceptQueue: UInt32
    /// Inode of the network namespace the socket lives in; 0 means the observation's own
    /// (`Observation.netnsInode`). The same key in two namespaces is two listeners.
    public var netns: UInt64

    public init(key: ListenerKey, inode: UInt64, uid: UInt32, holders: [SocketHolder] = [],
                unattributedReason: String? = nil, netns: UInt64 = 0, acceptQueue: UInt32 = 0) {
        self.key = key
        self.inode = inode
        self.uid = uid
        self.holders = holders
        self.unattributedReason = unattributedReason
        self.acceptQueue = acceptQueue
        self.netns = netns
    }
}

/// The machine a snapshot was taken on.
public struct HostIdentity: Hashable, Sendable {
    public var hostname: String
    public var machineID: String
    /// Identifies the boot, so that process identities of different boots never mix.
    public var bootID: String

    public init(hostname: String, machineID: String, bootID: String) {
        self.hostname = hostname
        self.machineID = machineID
        self.bootID = bootID
    }
}

/// Everything one collection saw.
public struct Observation: Sendable {
    public var host: HostIdentity
    /// The namespace the collector runs in: the snapshot's own, "host" in queries.
    public var netnsInode: UInt64
    public var asRoot: Bool
    /// How sockets were enumerated ("netlink", "procfs").
    public var source: String
    public var sockets: [ListeningSocket]
    /// Problems that did not stop the collection (an unreadable process, a fallback taken).
    public var errors: [String]
    /// The kernel name of each holder, as seen during the walk.
    public var processNames: [ProcessIdentity: String]
    /// Established TCP connections per listening TCP listener; nil when they could not be
    /// counted, so that no usage is recorded rather than a wrong zero.
    public var connections: [ListenerKey: Int]?
    /// Namespaces whose tables were read, so their listeners are all in `sockets`.
    /// Empty means only `netnsInode` (a source that knows nothing of namespaces).
    public var namespaces: [NetworkNamespace] = []
    /// Namespaces found but not read: what they hold is unknown, not gone.
    public var unreadNamespaces: Set<UInt64> = []
    /// Every namespace of the machine was looked for, so a namespace seen before and not
    /// found now is gone with its listeners.
    public var namespacesComplete = false
    /// True when every process's descriptors were read; false when the holders the store
    /// already knew were confirmed instead (see `KnownHolders`).
    public var fullWalk: Bool

    public init(host: HostIdentity, netnsInode: UInt64, asRoot: Bool, source: String,
                sockets: [ListeningSocket], errors: [String], processNames: [ProcessIdentity: String] = [:],
                fullWalk: Bool = true) {
        self.host = host
        self.netnsInode = netnsInode
        self.asRoot = asRoot
        self.source = source
        self.sockets = sockets
        self.errors = errors
        self.processNames = processNames
        self.fullWalk = fullWalk
    }

    /// Every process that holds at least one socket.
    public var holderProcesses: Set<ProcessIdentity> {
        Set(sockets.flatMap { $0.holders.map(\.process) })
    }

    /// The namespaces read, never empty.
    public var namespacesRead: [NetworkNamespace] {
        namespaces.isEmpty ? [NetworkNamespace(inode: netnsInode)] : namespaces
    }

    /// The namespace of `socket`, with 0 resolved to the observation's own.
    public func namespace(of socket: ListeningSocket) -> UInt64 {
        socket.netns == 0 ? netnsInode : socket.netns
    }
}

/// What the store already knows about which descriptors hold which sockets: the holdings of
/// the listeners the previous snapshot saw. A source may confirm these instead of reading
/// every descriptor of every process, which is most of the cost of a snapshot on a busy host.
public struct KnownHolders: Sendable {
    public struct Socket: Sendable, Equatable {
        public var holders: [SocketHolder]
        /// Why the store has no holder for it, when `holders` is empty.
        public var unattributedReason: String?

        public init(holders: [SocketHolder], unattributedReason: String? = nil) {
            self.holders = holders
            self.unattributedReason = unattributedReason
        }
    }

    /// Socket inode → its known holders.
    public var sockets: [UInt64: Socket]
    /// When true the source must read every process: confirming known holders cannot find a
    /// process that started sharing a known socket (a fork), so this is set periodically.
    public var fullWalkDue: Bool

    public init(sockets: [UInt64: Socket], fullWalkDue: Bool) {
        self.sockets = sockets
        self.fullWalkDue = fullWalkDue
    }

    /// Nothing known: the source reads everything.
    public static let none = KnownHolders(sockets: [:], fullWalkDue: true)
}

/// A platform's way of seeing listeners. Two calls, so that the expensive details of a
/// process (command line, executable, user) are read only for processes the caller
/// does not already know.
public protocol ListenerSource: Sendable {
    func observe() throws -> Observation
    /// Like `observe()`, but may confirm the holders `knownHolders` gives instead of searching
    /// every process. The result must be what `observe()` would return, except for holders
    /// that started sharing a known socket since they were recorded (found by the next full
    /// walk). They are being read meanwhile: ask for them only once they are needed. A source
    /// that cannot use them returns `observe()`. (No default: a source written against the
    /// earlier `observe(knownHolders: KnownHolders)` must not silently lose its hints.)
    func observe(knownHolders: () throws -> KnownHolders) throws -> Observation
    func describe(_ processes: some Collection<ProcessIdentity>) -> [ProcessIdentity: ProcessDetails]
}

