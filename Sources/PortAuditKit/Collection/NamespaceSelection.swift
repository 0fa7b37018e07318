/// A network namespace the machine uses: the inode of its /proc/<pid>/ns/net link names it.
public struct NetworkNamespace: Hashable, Sendable {
    public var inode: UInt64
    /// Its name under /run/netns, when `ip netns add` (or a tool like it) gave it one.
    public var name: String?

    public init(inode: UInt64, name: String? = nil) {
        self.inode = inode
        self.name = name
    }
}

/// Which network namespaces a command looks at: `--netns host|all|ID`.
public enum NamespaceSelection: Sendable, Equatable, CustomStringConvertible {
    /// The namespace portaudit itself runs in.
    case host
    /// Every namespace (as root; a non-root user can read only its own).
    case all
    /// One namespace, by inode number or by its /run/netns name.
    case id(String)

    public struct Invalid: Error, CustomStringConvertible {
        public var description: String
    }

    public init(parsing text: String) throws {
        switch text {
        case "host": self = .host
        case "all": self = .all
        case "": throw Invalid(description: "invalid --netns '': expected host, all, a namespace inode or a /run/netns name")
        default:
            // A /run/netns name is a file name: anything but '/', and not . or ..
            guard !text.contains("/"), text != ".", text != "..", !text.contains("\0") else {
                throw Invalid(description: "invalid --netns '\(text)': expected host, all, a namespace inode or a /run/netns name")
            }
            self = .id(text)
        }
    }

    /// Whether `namespace` is the one `.id` names.
    func matches(_ namespace: NetworkNamespace) -> Bool {
        guard case .id(let text) = self else { return false }
        if let inode = UInt64(text), inode == namespace.inode { return true }
        return namespace.name == text
    }

    public var description: String {
        switch self {
        case .host: "host"
        case .all: "all"
        case .id(let text): text
        }
    }
}
