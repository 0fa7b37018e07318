import Foundation
import GRDB

/// When a snapshot may confirm the holders the store knows instead of reading every
/// process's descriptors.
///
/// Confirming cannot find a process that starts sharing a socket the store already knows (a
/// worker forked after the last full walk). The guarantee: such a holder is recorded by the
/// first snapshot that is the `fullWalkEvery`-th since the last full walk or is taken
/// `fullWalkInterval` or more after it, whichever comes first.
public struct HolderCachePolicy: Sendable, Equatable {
    /// At most this many consecutive snapshots, the first of them a full walk.
    public var fullWalkEvery: Int
    /// A full walk at least this often, in seconds.
    public var fullWalkInterval: TimeInterval
    /// Read every process this time, whatever the store knows.
    public var forceFullWalk: Bool

    public init(fullWalkEvery: Int = 10, fullWalkInterval: TimeInterval = 600, forceFullWalk: Bool = false) {
        self.fullWalkEvery = fullWalkEvery
        self.fullWalkInterval = fullWalkInterval
        self.forceFullWalk = forceFullWalk
    }

    public static let `default` = HolderCachePolicy()
}

enum HolderCache {
    // The queries every snapshot runs before collecting; a test checks their plans.
    static let latestSnapshotSQL = "SELECT id, host_id FROM snapshot ORDER BY id DESC LIMIT 1"
    static let lastFullWalkSQL = """
        SELECT id, started_at FROM snapshot WHERE +host_id = ? AND full_walk = 1 ORDER BY id DESC LIMIT 1
        """
    static let snapshotsSinceSQL = "SELECT count(*) FROM snapshot WHERE id > ? AND +host_id = ?"
    /// The open intervals of the store's latest host, and the holders of their sockets
    /// unless `policy` wants a full walk now. A source verifies each holding against the
    /// system, so a hint from another host or boot can only fail verification, never be believed.
    static func load(_ db: Database, now: Date, policy: HolderCachePolicy) throws -> (known: KnownHolders, open: OpenIntervals?) {
        guard let last = try Row.fetchOne(db, sql: latestSnapshotSQL) else { return (.none, nil) }
        let hostID: Int64 = last["host_id"]
        let open = try OpenIntervals.load(db, hostID: hostID)
        guard !policy.forceFullWalk,
              // `+host_id`: walk the rowid backwards from the newest snapshot, which stops within
              // `fullWalkEvery` rows, rather than the time index over the host's whole history.
              let lastFull = try Row.fetchOne(db, sql: lastFullWalkSQL, arguments: [hostID])
        else { return (.none, open) }
        let lastFullID: Int64 = lastFull["id"]
        let lastFullAt = Timestamp.date(milliseconds: lastFull["started_at"])
        let since = try Int.fetchOne(db, sql: snapshotsSinceSQL, arguments: [lastFullID, hostID]) ?? 0
        let age = now.timeIntervalSince(lastFullAt)
        if since + 1 >= policy.fullWalkEvery || age >= policy.fullWalkInterval || age < 0 { return (.none, open) }
        return (KnownHolders(sockets: open.holders, fullWalkDue: false), open)
    }
}
