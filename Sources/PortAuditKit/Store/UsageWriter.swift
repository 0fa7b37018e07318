import GRDB

/// Stores how busy each TCP listener is (established connections, accept queue), only
/// where a value differs from the listener's previous row: an unchanged machine adds none.
struct UsageWriter {
    let db: Database
    let observation: Observation
    let snapshotID: Int64
    let hostID: Int64
    let netnsID: Int64
    /// What `OpenState` says the latest rows hold; nil when unknown.
    var storedUsageDigest: Int64?

    // Only listeners with an open interval: every one observed now has one, the writer
    // having opened the new ones in this transaction. Driven from the open intervals
    // (`+` keeps SQLite off the listener index), so a snapshot reads what listens, not every
    // listener the namespace ever had (50,000 of them: 13 ms of SQL and more to decode).
    static let previousSQL = """
        SELECT l.id, l.address, l.port, l.interface, u.connections, u.accept_queue
        FROM listener_interval i
        JOIN listener l ON l.id = i.listener_id
        LEFT JOIN listener_usage u ON u.listener_id = l.id
             AND u.snapshot_id = (SELECT max(snapshot_id) FROM listener_usage WHERE listener_id = l.id)
        WHERE i.last_snapshot_id IS NULL AND +l.netns_id = ? AND +l.protocol = 'tcp'
        """

    func run() throws {
        guard let connections = observation.connections else { return }
        var queues: [ListenerKey: Int] = [:]
        queues.reserveCapacity(observation.sockets.count)
        // Connections are counted in the snapshot's own namespace only.
        for socket in observation.sockets where socket.key.proto == .tcp && (socket.netns == 0 || socket.netns == observation.netnsInode) {
            queues[socket.key, default: 0] += Int(socket.acceptQueue)
        }
        let digest = OpenState.usageDigest(netns: observation.netnsInode, queues: queues, connections: connections)
        guard !queues.isEmpty, digest != storedUsageDigest else { return }

        // The latest values of every TCP listener of this namespace (no row means 0 and 0).
        var previous: [ListenerKey: (id: Int64, connections: Int, queue: Int)] = [:]
        previous.reserveCapacity(queues.count)
        let rows = try Row.fetchCursor(db, sql: Self.previousSQL, arguments: [netnsID])
        while let row = try rows.next() {
            let key = ListenerKey(proto: .tcp, address: row[1], port: UInt16(row[2] as Int), interface: row[3])
            previous[key] = (row[0], row[4] ?? 0, row[5] ?? 0)
        }
        let insert = try db.cachedStatement(sql: """
            INSERT INTO listener_usage (listener_id, snapshot_id, connections, accept_queue) VALUES (?, ?, ?, ?)
            """)
        for (key, queue) in queues {
            guard let before = previous[key] else { continue }
            let count = connections[key] ?? 0
            if count != before.connections || queue != before.queue {
                try insert.execute(arguments: [before.id, snapshotID, count, queue])
            }
        }
        try OpenState.saveUsage(db, host: hostID, digest: digest)
    }
}
