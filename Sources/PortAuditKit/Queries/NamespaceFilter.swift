import GRDB

/// `--netns` applied to rows that were read with their namespace, for the queries that
/// cannot narrow their SQL (changes reads a view that has no namespace column).
struct NamespaceFilter {
    let selection: NamespaceSelection

    /// Checked before any row is read, so that a namespace the store never saw is an
    /// error rather than an empty answer.
    init(_ selection: NamespaceSelection, db: Database) throws {
        try Self.requireKnown(selection, in: db)
        self.selection = selection
    }

    static func requireKnown(_ selection: NamespaceSelection, in db: Database) throws {
        guard case .id(let text) = selection else { return }
        let inode = UInt64(text).map { Int64(bitPattern: $0) }
        let known = try Bool.fetchOne(db, sql: "SELECT 1 FROM netns WHERE inode IS ? OR name = ?", arguments: [inode, text]) ?? false
        if !known { throw UnknownNamespace(selection: selection) }
    }

    func admits(_ namespace: RowNamespace) -> Bool {
        switch selection {
        case .all: true
        case .host: namespace.isHost
        case .id: selection.matches(NetworkNamespace(inode: namespace.inode, name: namespace.name))
        }
    }
}

/// The namespace a row's listener is in, as history's JSON names it: netns, netns_name, netns_is_host.
struct RowNamespace: Hashable {
    var inode: UInt64
    var name: String?
    var isHost: Bool

    /// From a row with the columns netns_inode, netns_name and netns_is_host.
    init(_ row: Row) {
        self.init(inode: UInt64(bitPattern: row["netns_inode"] as Int64), name: row["netns_name"], isHost: row["netns_is_host"] ?? false)
    }

    init(inode: UInt64, name: String?, isHost: Bool) {
        self.inode = inode
        self.name = name
        self.isHost = isHost
    }

    var fields: [FieldValue] { [.integer(inode), .optional(name), .bool(isHost)] }
    static let fieldNames = [FieldName.netns, FieldName.netnsName, FieldName.netnsIsHost]
}
