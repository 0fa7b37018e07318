import Foundation
import GRDB

/// A process holding a socket, as every command reports it.
public struct HolderView: Encodable, Sendable, Equatable {
    public var pid: Int32
    public var name: String
    public var user: String?
    public var uid: UInt32?
    public var exe: String?
    public var cmdline: String?
    public var ppid: Int32?
    public var startedAt: Date?
    public var fd: Int32?
    public var inode: UInt64
    /// The container the process runs in, from its cgroup path; nil outside containers.
    public var container: ContainerIdentity?

    enum CodingKeys: String, CodingKey {
        case pid, name, user, uid, exe, cmdline, ppid, startedAt, fd, inode, container
    }

    public init(pid: Int32, name: String, user: String?, uid: UInt32?, exe: String?, cmdline: String?,
                ppid: Int32?, startedAt: Date?, fd: Int32?, inode: UInt64, container: ContainerIdentity? = nil) {
        self.pid = pid
        self.name = name
        self.user = user
        self.uid = uid
        self.exe = exe
        self.cmdline = cmdline
        self.ppid = ppid
        self.startedAt = startedAt
        self.fd = fd
        self.inode = inode
        self.container = container
    }
}

/// A socket nobody could be found holding, and why.
public struct UnattributedSocket: Encodable, Sendable, Equatable {
    public var inode: UInt64
    public var socketUid: UInt32
    public var reason: String
}

/// A registered service name for a port, and which range it falls in.
public struct PortRegistration: Encodable, Sendable, Equatable {
    public var range: PortRange
    public var services: [Registration]

    public init(port: UInt16, proto: TransportProtocol? = nil) {
        range = PortRange(port: port)
        services = ServiceRegistry.lookup(port: port, proto: proto)
    }

    /// "ewall (EWALL)", or "" when the port has no named service.
    public var summary: String {
        var names: [String] = []
        for service in services where !service.service.isEmpty {
            let text = service.description.isEmpty || service.description.lowercased() == service.service.lowercased()
                ? service.service : "\(service.service) (\(service.description))"
            if !names.contains(text) { names.append(text) }
        }
        return names.joined(separator: ", ")
    }
}


extension HolderView {
    /// Absent values are written as null, so every record has every field.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(pid, forKey: .pid)
        try c.encode(name, forKey: .name)
        try c.encode(user, forKey: .user)
        try c.encode(uid, forKey: .uid)
        try c.encode(exe, forKey: .exe)
        try c.encode(cmdline, forKey: .cmdline)
        try c.encode(ppid, forKey: .ppid)
        try c.encode(startedAt, forKey: .startedAt)
        try c.encode(fd, forKey: .fd)
        try c.encode(inode, forKey: .inode)
        try c.encode(container, forKey: .container)
    }
}
