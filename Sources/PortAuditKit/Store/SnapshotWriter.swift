import Foundation
import GRDB

/// What one snapshot stored, for the summary line and for tests.
public struct SnapshotSummary: Sendable, Codable, Equatable {
    public var id: Int64
    public var startedAt: Date
    public var durationMs: Int
    public var listeners: Int
    public var sockets: Int
    public var unattributed: Int
    public var opened: Int
    public var closed: Int
    public var changed: Int
    public var errors: [String]
    public var source: String
    /// Network namespaces whose listeners were read.
    public var namespaces: Int = 1
    /// False when the holders known from the store were confirmed instead of reading every process.
    public var fullWalk: Bool
}

extension Store {
    /// Collects from `source` and stores the result in one transaction: intervals that are
    /// unchanged are left alone, so an unchanged machine adds only the snapshot row.
    /// `commandLines` can only make the store's own setting stricter (see `CommandLinePolicy`).
    /// `beforeCommit` runs inside the transaction once every row is written (crash tests
    /// use it to kill a run at that very point). The source is given the holders the store
    /// knows, to confirm rather than search for, as `policy` allows.
    public func snapshot(from source: some ListenerSource, policy: HolderCachePolicy = .default,
                         clock: @escaping () -> Date = Date.init,
                         commandLines: CommandLinePolicy = .full, beforeCommit: (() -> Void)? = nil) throws -> SnapshotSummary {
        try Self.snapshot(opening: { self }, from: source, policy: policy, clock: clock,
                          commandLines: commandLines, beforeCommit: beforeCommit).summary.get()
    }

    /// As `snapshot(from:)`, into the store at `path`, which is opened (created, migrated) on a
    /// helper thread while the source lists sockets: opening it first was a fifth of a quiet
    /// machine's snapshot. A store that cannot be opened throws; the snapshot's own outcome
    /// (`StoreError.superseded` among others) comes back with the store.
    public static func snapshot(path: String, lockTimeout: Double, from source: some ListenerSource,
                                policy: HolderCachePolicy = .default, commandLines: CommandLinePolicy = .full,
                                beforeCommit: (() -> Void)? = nil) throws -> (store: Store, summary: Result<SnapshotSummary, Error>) {
        try snapshot(opening: { try Store(path: path, access: .readWrite, lockTimeout: lockTimeout) }, from: source,
                     policy: policy, clock: Date.init, commandLines: commandLines, beforeCommit: beforeCommit)
    }

    /// The store's latest snapshot (of any host: `collectedAfter` of `record`) and the holders
    /// it knows, read outside the write transaction: the collection must not hold the write lock.
    private struct Prepared: Sendable {
        var store: Store
        var latest: (snapshot: Int64, host: Int64)?
        var known: KnownHolders

        /// What `store` (read through `db`) knows of the holders of its `latest` snapshot's
        /// host, for a run begun at `started`.
        static func reading(_ db: Database, of store: Store, latest: (snapshot: Int64, host: Int64)?, started: Date,
                            policy: HolderCachePolicy) throws -> Prepared {
            guard let latest else { return Prepared(store: store, latest: nil, known: .none) }
            return Prepared(store: store, latest: latest, known: try HolderCache.known(db, host: latest.host, now: started, policy: policy))
        }
    }

    private static func snapshot(opening open: @escaping @Sendable () throws -> Store, from source: some ListenerSource,
                                 policy: HolderCachePolicy, clock: @escaping () -> Date, commandLines: CommandLinePolicy,
                                 beforeCommit: (() -> Void)?) throws -> (store: Store, summary: Result<SnapshotSummary, Error>) {
        /// Collects at `started` with what `prepare` reads on a helper meanwhile (the source
        /// lists sockets before it needs the known holders), then records; the helper is done
        /// reading before the store is written or left, and the store's errors come before the
        /// collection's. Once it has handed over the known holders, the helper compiles the
        /// write's statements while this thread confirms them; the write waits for it on the
        /// store's connection if need be (50 sockets: 7.64 → 7.35 ms, 250 interleaved runs).
        func collect(at started: Date, startedBeforeRead: Bool,
                     _ prepare: @escaping @Sendable () throws -> Prepared) throws -> (store: Store, summary: Result<SnapshotSummary, Error>) {
            let prepared = Parallel.Pending(prepare)
            let observed = Result {
                try source.observe(knownHolders: {
                    // A walk that is forced anyway need not wait for the store to say so.
                    guard !policy.forceFullWalk else { return .none }
                    let ready = try prepared.value()
                    _ = Parallel.Pending { try ready.store.prepareWrite() }
                    return ready.known
                })
            }
            let ready = try prepared.value()
            return (ready.store, Result {
                try ready.store.record(try observed.get(), describer: source, started: started, clock: clock, commandLines: commandLines,
                                       collectedAfter: ready.latest?.snapshot ?? 0, startedBeforeRead: startedBeforeRead,
                                       beforeCommit: beforeCommit)
            })
        }
        let started = clock()
        let first = try collect(at: started, startedBeforeRead: true) {
            let store = try open()
            // One read transaction, not two (each BEGIN and COMMIT), and without GRDB's guard
            // around a read (see `readUnguarded`).
            return try store.readUnguarded { db in
                // A snapshot reads most pages once: SQLite's default page cache (2 MiB) was 1 MiB
                // of a 10,000-socket snapshot's peak memory. 256 KiB was as fast at 1,000 sockets;
                // at 10,000 the known holders took 45 ms to read instead of 41 (medians of 10, on
                // a helper thread beside the enumeration; whole runs within the noise).
                try db.execute(sql: "PRAGMA cache_size = -256")
                return try .reading(db, of: store, latest: try HolderCache.latest(db), started: started, policy: policy)
            }
        }
        guard case .failure(let error) = first.summary, error is CollectAgain else { return first }
        // This time the latest snapshot is read before the start is taken: one stored after
        // that read and stamped later makes `record` refuse this run (superseded), and one
        // stamped later but already there (a clock set back) is stored after, as it always was.
        let store = first.store
        let latest = try store.read(HolderCache.latest)
        let restarted = clock()
        return try collect(at: restarted, startedBeforeRead: false) {
            try store.readUnguarded { db in try .reading(db, of: store, latest: latest, started: restarted, policy: policy) }
        }
    }

    /// `record` found, already stored when the run read the store, a snapshot of this host
    /// stamped after the run began (see `SnapshotWriter.startedBeforeRead`).
    fileprivate struct CollectAgain: Error {}

    // `+host_id`: the rowid backwards from the newest snapshot, which stops at the host's
    // latest (at once when the host took the newest, within the other hosts' runs since
    // when several share the store); through the time index SQLite would read and sort all
    // of the host's snapshots (0.1 s a year on). A test checks the plan.
    static let previousSnapshotSQL = "SELECT id, started_at FROM snapshot WHERE +host_id = ? ORDER BY id DESC LIMIT 1"

    // From the open intervals, as HolderCache.knownHoldingsSQL: not every listener the host ever had.
    static let openIntervalsSQL = """
        SELECT i.id, i.state_hash, n.inode, l.protocol, l.address, l.port, l.interface
        FROM listener_interval i
        JOIN listener l ON l.id = i.listener_id
        JOIN netns n ON n.id = l.netns_id
        WHERE i.last_snapshot_id IS NULL AND +n.host_id = ?
        """

    /// Stores an observation made at `started`; `alongside` runs in the same transaction.
    /// `collectedAfter`, the store's latest snapshot when the collection began, makes a
    /// snapshot that started later and was stored meanwhile refuse this one
    /// (`StoreError.superseded`): ids keep time order. With `startedBeforeRead` (the start
    /// was taken before `collectedAfter` was read), a snapshot of this host stamped after
    /// `started` and stored before that read throws `CollectAgain`.
    func record(_ observation: Observation, describer source: some ListenerSource, started: Date,
                clock: @escaping () -> Date = Date.init, commandLines: CommandLinePolicy = .full,
                continuity: Continuity = .judgedByHistory, collectedAfter: Int64? = nil, startedBeforeRead: Bool = false,
                alongside: (Database, SnapshotSummary) throws -> Void = { _, _ in },
                beforeCommit: (() -> Void)? = nil) throws -> SnapshotSummary {
        try write(durable: { $0.opened + $0.closed + $0.changed > 0 }) { db in
            let written = try SnapshotWriter(db: db, observation: observation, source: source, started: started, clock: clock,
                                             commandLines: max(commandLines, try Self.commandLinePolicy(db)),
                                             continuity: continuity, collectedAfter: collectedAfter,
                                             startedBeforeRead: startedBeforeRead).run()
            let summary = written.summary
            try alongside(db, summary)
            try UsageWriter(db: db, observation: observation, snapshotID: summary.id, hostID: written.hostID, netnsID: written.netnsID,
                            storedUsageDigest: written.storedUsageDigest).run()
            beforeCommit?()
            return summary
        }
    }
}

/// How the time since the host's previous snapshot was observed, which says whether the
/// pause before a snapshot is a gap.
enum Continuity {
    /// Unknown (cron): a gap when much longer than the spacing of the recent snapshots.
    case judgedByHistory
    /// Watched without a pause (watch mode, checking between the snapshots it writes): no gap.
    case continuous
    /// Watched, but nothing was checked after `since` (a suspended machine, a stalled watch):
    /// a gap from then, against the watch's interval.
    case pausedSince(Date, usualMs: Int64)
}

/// A listener as history keeps it: the same key in two network namespaces is two listeners.
struct NamespacedKey: Hashable {
    var netns: UInt64
    var key: ListenerKey
}

/// One listener's state as a snapshot sees it: every socket and every holder.
struct ListenerState {
    var key: ListenerKey
    var sockets: [ListeningSocket]
    /// Inode of its network namespace.
    var netns: UInt64 = 0

    /// A fingerprint that changes when any socket, holder or reason changes. FNV-1a, so it
    /// is the same in every run (Swift's Hasher is seeded per process).
    var fingerprint: Int64 {
        var hash = StableHash.seed
        func mix(_ value: UInt64) {
            for shift in stride(from: 0, to: 64, by: 8) {
                hash = StableHash.step(hash, (value >> UInt64(shift)) & 0xff)
            }
        }
        // Most listeners have one socket with one holder: sorting a copy of each was most of the cost.
        for socket in sockets.count > 1 ? sockets.sorted(by: { $0.inode < $1.inode }) : sockets {
            mix(socket.inode)
            mix(UInt64(socket.uid))
            for holder in socket.holders.count > 1 ? socket.holders.sorted() : socket.holders {
                mix(UInt64(bitPattern: Int64(holder.process.pid)))
                mix(holder.process.startTicks)
                mix(UInt64(bitPattern: Int64(holder.fd)))
            }
            // The reason as stored: only without holders, "no-process" when none was given.
            // (What the collector gives, a reason exactly when there is no holder, hashes as before.)
            for byte in (socket.holders.isEmpty ? socket.storedUnattributedReason : "").utf8 { mix(UInt64(byte)) }
            mix(0xff)
        }
        return Int64(bitPattern: hash)
    }
}

/// The statements of a snapshot's write that run every time, the unchanged snapshot's whole
/// write: prepared once per connection (GRDB's statement cache), and ahead of the write on
/// the helper thread, while the first thread confirms the holders (see `prepareWrite`).
enum SnapshotWriteSQL {
    static let host = "SELECT id FROM host WHERE machine_id = ? AND hostname = ?"
    static let netns = "SELECT id, name FROM netns WHERE host_id = ? AND inode = ?"
    static let insertSnapshot = """
        INSERT INTO snapshot (host_id, netns_id, started_at, duration_ms, as_root, source,
                              listeners, sockets, unattributed, opened, closed, changed, errors, full_walk)
        VALUES (?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        """
    static let deleteCoveredGap = "DELETE FROM coverage_gap WHERE host_id = ? AND from_at < ? AND to_at > ?"
    static let duration = "UPDATE snapshot SET duration_ms = ? WHERE id = ?"

    /// In the order the write runs them.
    static let everyTime = [Store.settingSQL, host, netns, Store.previousSnapshotSQL, OpenState.cachedSQL, insertSnapshot,
                            deleteCoveredGap, CoverageQuery.latestCutSQL, Coverage.recentSnapshotsSQL, duration]
}

extension Store {
    /// Compiles the statements every snapshot's write runs, so that the write only executes
    /// them. In a new process each costs far more to compile than to run (SQLite's and GRDB's
    /// code run cold), and the helper thread is otherwise idle while the first confirms.
    func prepareWrite() throws {
        try queue.inDatabase { db in
            for sql in SnapshotWriteSQL.everyTime { _ = try db.cachedStatement(sql: sql) }
        }
    }
}

private struct SnapshotWriter<Source: ListenerSource> {
    let db: Database
    let observation: Observation
    let source: Source
    let started: Date
    let clock: () -> Date
    /// What is kept of each new holder's command line (secrets masked, or nothing).
    var commandLines: CommandLinePolicy = .full
    var continuity = Continuity.judgedByHistory
    var collectedAfter: Int64?
    /// The run took its start before it read `collectedAfter`, so a snapshot stored before
    /// that read may be stamped after the start: one that began later and was stored while this
    /// run opened the store (storing this one after it would put the host's ids out of time
    /// order), or one from before the clock was set back. Which, cannot be told: the run
    /// collects again with its start taken after the read, as a run that began then would.
    var startedBeforeRead = false

    struct Written {
        var summary: SnapshotSummary
        var hostID: Int64
        /// The namespace the snapshot ran in, whose connections it counted.
        var netnsID: Int64
        /// The digest of the usage values the store holds for these listeners, when known.
        var storedUsageDigest: Int64?
    }

    func run() throws -> Written {
        let (hostID, newHost) = try upsertHost()
        var netnsIDs: [UInt64: Int64] = [:]
        for namespace in observation.namespacesRead {
            netnsIDs[namespace.inode] = try upsertNetns(namespace, hostID: hostID)
        }
        let netnsID = try netnsIDs[observation.netnsInode]
            ?? upsertNetns(NetworkNamespace(inode: observation.netnsInode), hostID: hostID)
        // A new host has none: the backwards walk would read the whole table to find that.
        let previous = newHost ? nil : try Row.fetchOne(db.cachedStatement(sql: Store.previousSnapshotSQL), arguments: [hostID])
        let previousSnapshot: Int64? = previous?["id"]
        if let collectedAfter, let previous, previous["id"] > collectedAfter, previous["started_at"] > Timestamp.milliseconds(started) {
            throw StoreError.superseded(by: previous["id"], startedAt: Timestamp.date(milliseconds: previous["started_at"]))
        }
        if startedBeforeRead, let previous, previous["started_at"] > Timestamp.milliseconds(started) {
            throw Store.CollectAgain()
        }

        let digest = OpenState.digest(of: observation.sockets, namespace: observation.namespace(of:))
        let cached = newHost ? nil : try OpenState.cached(db, host: hostID)
        // The store's open intervals hold these very sockets: nothing to open or close, and
        // no need to group the sockets into listeners (a tenth of an unchanged snapshot).
        let unchanged = cached?.digest == digest
        var listeners = cached?.listeners ?? 0
        var toOpen: [ListenerState] = []
        var toClose: [Int64] = []
        var opened = 0, changed = 0, closed = 0
        /// Open intervals this snapshot cannot speak for, and leaves open.
        var leftOpen = 0
        if !unchanged {
            // Open intervals: what the previous snapshot saw, in the namespaces this one can
            // speak for: those it read, and, when it looked for all of them, those now gone.
            // A namespace it could not read (or not look for, without root) is left as it was.
            var open: [NamespacedKey: (interval: Int64, fingerprint: Int64)] = [:]
            open.reserveCapacity(observation.sockets.count)
            let rows = try Row.fetchCursor(db, sql: Store.openIntervalsSQL, arguments: [hostID])
            while let row = try rows.next() {
                guard let proto = TransportProtocol(rawValue: row[3]) else { leftOpen += 1; continue }
                let inode = UInt64(bitPattern: row[2] as Int64)
                let answers = netnsIDs[inode] != nil
                    || (observation.namespacesComplete && !observation.unreadNamespaces.contains(inode))
                guard answers else { leftOpen += 1; continue }
                let key = ListenerKey(proto: proto, address: row[4], port: UInt16(row[5] as Int), interface: row[6])
                open[NamespacedKey(netns: inode, key: key)] = (row[0], row[1])
            }
            let current = Dictionary(grouping: observation.sockets) { NamespacedKey(netns: observation.namespace(of: $0), key: $0.key) }
                .map { ListenerState(key: $0.key.key, sockets: $0.value, netns: $0.key.netns) }
            listeners = current.count
            for state in current {
                if let existing = open.removeValue(forKey: NamespacedKey(netns: state.netns, key: state.key)) {
                    if existing.fingerprint == state.fingerprint { continue }
                    toClose.append(existing.interval)
                    changed += 1
                } else {
                    opened += 1
                }
                toOpen.append(state)
            }
            closed = open.count
            toClose += open.values.map(\.interval)
        }
        let unattributed = observation.sockets.filter { $0.holders.isEmpty }.count

        try db.cachedStatement(sql: SnapshotWriteSQL.insertSnapshot).execute(arguments: [
                hostID, netnsID, Timestamp.milliseconds(started), observation.asRoot, observation.source,
                listeners, observation.sockets.count,
                unattributed,
                opened, closed, changed,
                observation.errors.isEmpty ? nil : observation.errors.joined(separator: "\n"),
                observation.fullWalk,
            ])
        let snapshotID = db.lastInsertedRowID
        try recordGap(hostID: hostID, endingAt: Timestamp.milliseconds(started))

        if !toClose.isEmpty {
            let close = try db.cachedStatement(sql: """
                UPDATE listener_interval SET last_snapshot_id = ?, ended_snapshot_id = ? WHERE id = ?
                """)
            for interval in toClose { try close.execute(arguments: [previousSnapshot, snapshotID, interval]) }
        }
        if !toOpen.isEmpty {
            let processIDs = try processRows(for: toOpen, hostID: hostID)
            for state in toOpen {
                try insertInterval(state, netnsID: netnsIDs[state.netns] ?? netnsID, snapshotID: snapshotID, processIDs: processIDs)
            }
        }

        // Once the intervals are written (their triggers deleted the row): the open state is
        // now the observation's, unless intervals this snapshot could not speak for are open too.
        if !unchanged && leftOpen == 0 {
            try OpenState.save(db, host: hostID, digest: digest, listeners: listeners, sockets: observation.sockets)
        }

        let durationMs = max(0, Int((clock().timeIntervalSince(started) * 1000).rounded()))
        try db.cachedStatement(sql: SnapshotWriteSQL.duration).execute(arguments: [durationMs, snapshotID])
        let summary = SnapshotSummary(
            id: snapshotID, startedAt: started, durationMs: durationMs, listeners: listeners,
            sockets: observation.sockets.count,
            unattributed: unattributed,
            opened: opened, closed: closed, changed: changed, errors: observation.errors,
            source: observation.source, namespaces: observation.namespacesRead.count, fullWalk: observation.fullWalk)
        return Written(summary: summary, hostID: hostID, netnsID: netnsID, storedUsageDigest: unchanged ? cached?.usageDigest : nil)
    }

    /// Writes the pause this snapshot ends as a gap when it is one (see `Continuity`): queries
    /// then read gaps instead of every snapshot. Only snapshots since the latest prune say what
    /// is usual (before its cut only those dating surviving listeners remain).
    private func recordGap(hostID: Int64, endingAt time: Int64) throws {
        // A recorded gap this snapshot falls inside was none (the clock had run ahead).
        try db.cachedStatement(sql: SnapshotWriteSQL.deleteCoveredGap).execute(arguments: [hostID, time, time])
        let gap: (from: Int64, usualMs: Int64)
        switch continuity {
        case .continuous:
            return
        case .pausedSince(let since, let usualMs):
            gap = (Timestamp.milliseconds(since), usualMs)
        case .judgedByHistory:
            let cut = try CoverageQuery(db: db).latestCut() ?? .min
            let recent = try Coverage.recentSnapshots(db, host: hostID, before: time, notBefore: cut)
            guard let found = Coverage.gap(endingAt: time, after: recent.scheduled, previous: recent.newest) else { return }
            gap = (Timestamp.milliseconds(found.gap.from), found.usualMs)
        }
        try db.execute(sql: "INSERT OR IGNORE INTO coverage_gap (host_id, from_at, to_at, usual_ms) VALUES (?, ?, ?, ?)",
                       arguments: [hostID, gap.from, time, gap.usualMs])
    }

    /// The host's row, and whether it was just created (a first snapshot, or a new hostname).
    private func upsertHost() throws -> (id: Int64, new: Bool) {
        let host = observation.host
        if let id = try Int64.fetchOne(db.cachedStatement(sql: SnapshotWriteSQL.host), arguments: [host.machineID, host.hostname]) {
            return (id, false)
        }
        try db.execute(sql: "INSERT INTO host (machine_id, hostname) VALUES (?, ?)", arguments: [host.machineID, host.hostname])
        return (db.lastInsertedRowID, true)
    }

    /// The namespace's row; a name given since (`ip netns attach`) is recorded, a name
    /// removed is kept, as history.
    private func upsertNetns(_ namespace: NetworkNamespace, hostID: Int64) throws -> Int64 {
        let inode = Int64(bitPattern: namespace.inode)
        if let row = try Row.fetchOne(db.cachedStatement(sql: SnapshotWriteSQL.netns), arguments: [hostID, inode]) {
            let id: Int64 = row["id"]
            if let name = namespace.name, name != row["name"] as String? {
                try db.execute(sql: "UPDATE netns SET name = ? WHERE id = ?", arguments: [name, id])
            }
            return id
        }
        try db.execute(sql: "INSERT INTO netns (host_id, inode, name) VALUES (?, ?, ?)",
                       arguments: [hostID, inode, namespace.name])
        return db.lastInsertedRowID
    }

    /// Process row ids of every holder of `states`; details are read from the system only
    /// for processes the store does not know yet.
    private func processRows(for states: [ListenerState], hostID: Int64) throws -> [ProcessIdentity: Int64] {
        let bootID = observation.host.bootID
        let wanted = Set(states.flatMap { $0.sockets.flatMap { $0.holders.map(\.process) } })
        var ids: [ProcessIdentity: Int64] = [:]
        let find = try db.cachedStatement(sql: """
            SELECT id FROM process WHERE host_id = ? AND boot_id = ? AND pid = ? AND start_ticks = ?
            """)
        var unknown: [ProcessIdentity] = []
        for identity in wanted {
            if let id = try Int64.fetchOne(find, arguments: [hostID, bootID, identity.pid, Int64(bitPattern: identity.startTicks)]) {
                ids[identity] = id
            } else {
                unknown.append(identity)
            }
        }
        guard !unknown.isEmpty else { return ids }
        let details = source.describe(unknown)
        let insert = try db.cachedStatement(sql: """
            INSERT INTO process (host_id, boot_id, pid, start_ticks, started_at, ppid, name, exe, cmdline, uid, user,
                                 container_runtime, container_id)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        for identity in unknown {
            // A holder that exited since the walk keeps the name the walk saw.
            let d = details[identity]
            try insert.execute(arguments: [
                hostID, bootID, identity.pid, Int64(bitPattern: identity.startTicks),
                d.map { Timestamp.milliseconds($0.startedAt) } ?? Timestamp.milliseconds(started),
                d?.ppid, d?.name ?? observation.processNames[identity] ?? "?", d?.exe, commandLines.apply(d?.cmdline),
                d?.uid.map { Int64($0) }, d?.user, d?.container?.runtime, d?.container?.id,
            ])
            ids[identity] = db.lastInsertedRowID
        }
        return ids
    }

    private func insertInterval(_ state: ListenerState, netnsID: Int64, snapshotID: Int64,
                                processIDs: [ProcessIdentity: Int64]) throws {
        let key = state.key
        let listenerID: Int64
        if let id = try Int64.fetchOne(db.cachedStatement(sql: """
            SELECT id FROM listener WHERE netns_id = ? AND protocol = ? AND address = ? AND port = ? AND interface = ?
            """), arguments: [netnsID, key.proto.rawValue, key.address, Int(key.port), key.interface]) {
            listenerID = id
        } else {
            try db.cachedStatement(sql: """
                INSERT INTO listener (netns_id, protocol, address, port, interface) VALUES (?, ?, ?, ?, ?)
                """).execute(arguments: [netnsID, key.proto.rawValue, key.address, Int(key.port), key.interface])
            listenerID = db.lastInsertedRowID
        }
        try db.cachedStatement(sql: """
            INSERT INTO listener_interval (listener_id, first_snapshot_id, socket_count, state_hash) VALUES (?, ?, ?, ?)
            """).execute(arguments: [listenerID, snapshotID, state.sockets.count, state.fingerprint])
        let intervalID = db.lastInsertedRowID
        let holding = try db.cachedStatement(sql: """
            INSERT INTO holding (interval_id, inode, socket_uid, process_id, fd, unattributed_reason) VALUES (?, ?, ?, ?, ?, ?)
            """)
        for socket in state.sockets {
            let inode = Int64(bitPattern: socket.inode)
            if socket.holders.isEmpty {
                try holding.execute(arguments: [intervalID, inode, Int64(socket.uid), nil, nil,
                                                socket.storedUnattributedReason])
            }
            for holder in socket.holders {
                try holding.execute(arguments: [intervalID, inode, Int64(socket.uid), processIDs[holder.process], holder.fd, nil])
            }
        }
    }
}
