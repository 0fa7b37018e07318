import GRDB

/// The listeners a host's latest snapshot saw, each with its open interval and holders. A
/// snapshot reads them once, before collecting: the holders are what it confirms instead of
/// walking, and the intervals what it compares its observation with, unless another
/// snapshot of the host was stored meanwhile (then the writer reads them again).
struct OpenIntervals {
    struct Interval {
        var id: Int64
        var fingerprint: Int64
    }

    var hostID: Int64
    /// The host's latest snapshot when they were read: they are current while it still is.
    var asOfSnapshot: Int64?
    var intervals: [NamespacedKey: Interval] = [:]
    /// Socket inode → its holders, or why it has none.
    var holders: [UInt64: KnownHolders.Socket] = [:]

    // `+host_id`: the rowid backwards from the newest snapshot, which stops at the host's
    // latest; through the time index SQLite would read and sort all of the host's snapshots.
    static let latestSnapshotSQL = "SELECT id FROM snapshot WHERE +host_id = ? ORDER BY id DESC LIMIT 1"
    // Rows of one interval come together (the plan walks intervals, then their holdings).
    static let sql = """
        SELECT i.id, i.state_hash, n.inode, l.protocol, l.address, l.port, l.interface,
               h.inode, p.pid, p.start_ticks, h.fd, h.unattributed_reason
        FROM netns n
        JOIN listener l ON l.netns_id = n.id
        JOIN listener_interval i ON i.listener_id = l.id AND i.last_snapshot_id IS NULL
        LEFT JOIN holding h ON h.interval_id = i.id
        LEFT JOIN process p ON p.id = h.process_id
        WHERE n.host_id = ?
        """

    static func load(_ db: Database, hostID: Int64) throws -> OpenIntervals {
        var state = OpenIntervals(hostID: hostID, asOfSnapshot: try Int64.fetchOne(db, sql: latestSnapshotSQL, arguments: [hostID]))
        var interval: Int64?
        let rows = try Row.fetchCursor(db, sql: sql, arguments: [hostID])
        while let row = try rows.next() {
            let id: Int64 = row[0]
            if id != interval, let proto = TransportProtocol(rawValue: row[3]) {
                interval = id
                let key = ListenerKey(proto: proto, address: row[4], port: UInt16(row[5] as Int), interface: row[6])
                state.intervals[NamespacedKey(netns: UInt64(bitPattern: row[2] as Int64), key: key)] = Interval(id: id, fingerprint: row[1])
            }
            guard let socket = row[7] as Int64? else { continue }
            let inode = UInt64(bitPattern: socket)
            var entry = state.holders[inode] ?? KnownHolders.Socket(holders: [])
            if let pid = row[8] as Int32?, let ticks = row[9] as Int64?, let fd = row[10] as Int32? {
                entry.holders.append(SocketHolder(process: ProcessIdentity(pid: pid, startTicks: UInt64(bitPattern: ticks)), fd: fd))
            } else {
                entry.unattributedReason = row[11]
            }
            state.holders[inode] = entry
        }
        return state
    }
}
