import Foundation
import GRDB

/// The health of a store: where it is, how big, which schema, and how well it covers time.
public struct StoreStatus: Encodable, Sendable {
    public var path: String
    /// The file and its write-ahead log.
    public var bytes: Int64
    /// The last migration applied (e.g. "0003_settings"), and how many.
    public var schemaVersion: String?
    public var migrations: Int
    public var snapshots: Int
    public var commandLines: String
    public var hosts: [HostCoverage]
    /// "ok", or SQLite's first complaints; nil when not verified.
    public var integrity: String?

    /// The last snapshot of any host.
    public var lastSnapshot: Date? { hosts.compactMap(\.lastSnapshot).max() }

    enum CodingKeys: String, CodingKey {
        case path, bytes, schemaVersion, migrations, snapshots, commandLines, hosts, lastSnapshot, integrity
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(path, forKey: .path)
        try c.encode(bytes, forKey: .bytes)
        try c.encode(schemaVersion, forKey: .schemaVersion)
        try c.encode(migrations, forKey: .migrations)
        try c.encode(snapshots, forKey: .snapshots)
        try c.encode(commandLines, forKey: .commandLines)
        try c.encode(hosts, forKey: .hosts)
        try c.encode(lastSnapshot, forKey: .lastSnapshot)
        try c.encode(integrity, forKey: .integrity)
    }

    /// Whether the newest snapshot is older than `intervals` usual intervals at `now`.
    /// Without a usual interval (fewer than two snapshots) `fallbackInterval` is used.
    public func staleness(now: Date = Date(), intervals: Double, fallbackInterval: TimeInterval) -> Staleness {
        let usual = hosts.compactMap(\.usualInterval).max() ?? fallbackInterval
        guard let last = lastSnapshot else { return Staleness(stale: true, age: nil, limit: usual * intervals, usual: usual) }
        let age = now.timeIntervalSince(last)
        return Staleness(stale: age > usual * intervals, age: age, limit: usual * intervals, usual: usual)
    }

    public struct Staleness: Sendable {
        public var stale: Bool
        /// Seconds since the last snapshot; nil when there is none.
        public var age: TimeInterval?
        public var limit: TimeInterval
        public var usual: TimeInterval
    }
}

extension Store {
    /// With `verify`, also reads every page (PRAGMA integrity_check).
    public func status(verify: Bool = false) throws -> StoreStatus {
        let bytes = fileBytes()
        return try read { db in
            let applied = try Schema.applied(db)
            // Every snapshot belongs to a host: their sum spares a second count of the whole table.
            let hosts = try CoverageQuery(db: db).all()
            return StoreStatus(
                path: path, bytes: bytes, schemaVersion: applied.last, migrations: applied.count,
                snapshots: hosts.reduce(0) { $0 + $1.snapshots },
                commandLines: try Self.commandLinePolicy(db).rawValue,
                hosts: hosts,
                integrity: verify ? try String.fetchAll(db, sql: "PRAGMA integrity_check(10)").joined(separator: "; ") : nil)
        }
    }
}
