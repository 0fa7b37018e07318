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
    // The host's last full walk, and how many of its snapshots came after it.
    static let lastFullWalkSQL = """
        SELECT f.id, f.started_at, (SELECT count(*) FROM snapshot s WHERE s.id > f.id AND +s.host_id = f.host_id) AS since
        FROM snapshot f WHERE +f.host_id = ? AND f.full_walk = 1 ORDER BY f.id DESC LIMIT 1
        """
    // From the open intervals (`+` keeps SQLite from starting at the host's listeners,
    // which would walk every listener the host ever had).
    static let knownHoldingsSQL = """
        SELECT h.inode, p.pid, p.start_ticks, h.fd, h.unattributed_reason
        FROM listener_interval i
        JOIN listener l ON l.id = i.listener_id
        JOIN netns n ON n.id = l.netns_id
        JOIN holding h ON h.interval_id = i.id
        LEFT JOIN process p ON p.id = h.process_id
        WHERE i.last_snapshot_id IS NULL AND +n.host_id = ?
        """

    /// The store's latest snapshot and the host that took it; nil for an empty store.
    static func latest(_ db: Database) throws -> (snapshot: Int64, host: Int64)? {
        try Row.fetchOne(db, sql: latestSnapshotSQL).map { ($0["id"], $0["host_id"]) }
    }

    /// The holdings of every listener the last snapshot of `host` saw, unless `policy` wants
    /// a full walk now. A source verifies each holding against the system, so a hint from
    /// another host or boot can only fail verification, never be believed.
    static func known(_ db: Database, host hostID: Int64, now: Date, policy: HolderCachePolicy) throws -> KnownHolders {
        guard !policy.forceFullWalk,
              // `+host_id`: walk the rowid backwards from the newest snapshot, which stops within
              // `fullWalkEvery` rows, rather than the time index over the host's whole history.
              let lastFull = try Row.fetchOne(db, sql: lastFullWalkSQL, arguments: [hostID])
        else { return .none }
        let lastFullAt = Timestamp.date(milliseconds: lastFull["started_at"])
        let since: Int = lastFull["since"]
        let age = now.timeIntervalSince(lastFullAt)
        if since + 1 >= policy.fullWalkEvery || age >= policy.fullWalkInterval || age < 0 { return .none }

        return KnownHolders(sockets: try OpenState.holders(db, host: hostID) ?? knownFromHistory(db, host: hostID),
                            fullWalkDue: false)
    }

    /// The holdings of the host's open intervals, read from the history (`OpenState` keeps
    /// the same in one row).
    static func knownFromHistory(_ db: Database, host hostID: Int64) throws -> [UInt64: KnownHolders.Socket] {
        var sockets: [UInt64: KnownHolders.Socket] = [:]
        let rows = try Row.fetchCursor(db, sql: knownHoldingsSQL, arguments: [hostID])
        while let row = try rows.next() {
            let inode = UInt64(bitPattern: row[0] as Int64)
            if let pid = row[1] as Int32?, let ticks = row[2] as Int64?, let fd = row[3] as Int32? {
                let holder = SocketHolder(process: ProcessIdentity(pid: pid, startTicks: UInt64(bitPattern: ticks)), fd: fd)
                sockets[inode, default: KnownHolders.Socket(holders: [])].holders.append(holder)
            } else {
                sockets[inode, default: KnownHolders.Socket(holders: [])].unattributedReason = row[4]
            }
        }
        return sockets
    }
}
