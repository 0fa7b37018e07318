import Foundation
import GRDB
import Testing
@testable import PortAuditKit

/// The `open_state` row lets an unchanged snapshot skip reading the open intervals, so it
/// must say exactly what the history says, and must never outlive a change to the history.
@Suite struct OpenStateTests {
    private static func socket(_ inode: UInt64, port: UInt16, holders: [(Int32, UInt64, Int32)] = [],
                               reason: String? = nil, proto: TransportProtocol = .tcp) -> ListeningSocket {
        ListeningSocket(key: ListenerKey(proto: proto, address: "127.0.0.1", port: port), inode: inode, uid: 0,
                        holders: holders.map { SocketHolder(process: ProcessIdentity(pid: $0.0, startTicks: $0.1), fd: $0.2) },
                        unattributedReason: reason)
    }

    private static let sockets = [
        socket(100, port: 80, holders: [(10, 5000, 3), (11, 5100, 3)]),
        socket(101, port: 53, holders: [(12, 6000, 7)], proto: .udp),
        socket(102, port: 443, holders: [(13, 7000, 4)]),
        socket(103, port: 443, holders: [(14, 7100, 4)]),
        socket(104, port: 1328, reason: UnattributedReason.permissionDenied),
        socket(105, port: 2000, reason: "raison d’être"),
        socket(106, port: 8080),
    ]

    private static func digest(_ sockets: [ListeningSocket]) -> Int64 {
        OpenState.digest(of: sockets) { $0.netns == 0 ? 4_026_531_840 : $0.netns }
    }

    @Test func digestIgnoresOrderAndSeesEveryChange() {
        let digest = Self.digest(Self.sockets)
        #expect(Self.digest(Self.sockets.reversed()) == digest)
        #expect(Self.digest(Self.sockets.shuffled()) == digest)
        var reordered = Self.sockets
        reordered[0].holders.reverse()
        #expect(Self.digest(reordered) == digest)
        // Stored alike: no reason is "no-process".
        var defaulted = Self.sockets
        defaulted[6].unattributedReason = UnattributedReason.noProcess
        #expect(Self.digest(defaulted) == digest)

        var variants: [[ListeningSocket]] = [Array(Self.sockets.dropLast()), Self.sockets + [Self.sockets[0]]]
        func variant(_ index: Int = 0, _ change: (inout ListeningSocket) -> Void) {
            var changed = Self.sockets
            change(&changed[index])
            variants.append(changed)
        }
        variant { $0.netns = 1 }
        variant { $0.key.port = 81 }
        variant { $0.key.proto = .udp }
        variant { $0.key.address = "::1" }
        variant { $0.key.interface = "lo" }
        variant { $0.inode = 99 }
        variant { $0.uid = 1000 }
        variant { $0.holders[1].fd = 4 }
        variant { $0.holders[1].process.pid = 15 }
        variant { $0.holders[1].process.startTicks += 1 }
        variant { $0.holders.removeLast() }
        variant(4) { $0.unattributedReason = UnattributedReason.processExited }
        // Two sockets trading listeners keep the same words, summed: each is mixed before the sum.
        var swapped = Self.sockets
        (swapped[0].key, swapped[1].key) = (swapped[1].key, swapped[0].key)
        variants.append(swapped)
        let digests = variants.map(Self.digest)
        #expect(!digests.contains(digest))
        #expect(Set(digests).count == digests.count)
    }

    @Test func usageDigestSeesEveryValue() {
        let a = ListenerKey(proto: .tcp, address: "127.0.0.1", port: 80)
        let b = ListenerKey(proto: .tcp, address: "::1", port: 80)
        let digest = OpenState.usageDigest(netns: 7, queues: [a: 1, b: 0], connections: [a: 3])
        #expect(OpenState.usageDigest(netns: 7, queues: [b: 0, a: 1], connections: [a: 3, b: 0]) == digest)
        let others = [
            OpenState.usageDigest(netns: 7, queues: [a: 2, b: 0], connections: [a: 3]),
            OpenState.usageDigest(netns: 7, queues: [a: 1, b: 0], connections: [a: 4]),
            OpenState.usageDigest(netns: 7, queues: [a: 1, b: 0], connections: [a: 3, b: 1]),
            OpenState.usageDigest(netns: 7, queues: [a: 3, b: 0], connections: [a: 1]),
            OpenState.usageDigest(netns: 7, queues: [a: 1], connections: [a: 3]),
            // Usage is kept per namespace: the same values seen from another are not the same usage.
            OpenState.usageDigest(netns: 8, queues: [a: 1, b: 0], connections: [a: 3]),
        ]
        #expect(!others.contains(digest))
    }

    @Test func packedHoldersReadBackAsTheHistoryHasThem() throws {
        let packed = HolderPacking.pack(Self.sockets)
        let holders = try #require(HolderPacking.unpack(packed))
        var expected: [UInt64: KnownHolders.Socket] = [:]
        for socket in Self.sockets {
            // As the writer stores a socket without holders: with its reason, "no-process" by default.
            expected[socket.inode] = KnownHolders.Socket(
                holders: socket.holders,
                unattributedReason: socket.holders.isEmpty ? socket.unattributedReason ?? UnattributedReason.noProcess : nil)
        }
        #expect(holders == expected)
        #expect(HolderPacking.unpack(HolderPacking.pack([])) == [:])
        // Cut inside a socket's record, the bytes are refused rather than half read.
        let bytes = [UInt8](packed)
        var boundaries: Set<Int> = []
        var end = 0
        for socket in Self.sockets {
            end += 12 + (socket.holders.isEmpty
                ? 4 + (socket.unattributedReason ?? UnattributedReason.noProcess).utf8.count
                : 16 * socket.holders.count)
            boundaries.insert(end)
        }
        #expect(end == bytes.count)
        for length in 1..<bytes.count where !boundaries.contains(length) {
            #expect(HolderPacking.unpack(Data(bytes[..<length])) == nil, "\(length) bytes")
        }
    }

    /// After snapshots of this machine, the row says what its history says: its digest is that
    /// of the open intervals' sockets, rebuilt from the history's tables, and its holders those
    /// the history's query reads.
    @Test func rowDescribesTheHistory() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let db = directory.file("store.db")
        let fixture = try Listeners(["--socket", "tcp4,fork=2", "--socket", "udp6", "--socket", "tcp6,reuseport=2"])
        defer { fixture.stop() }
        for walk in [["--full-walk"], []] {
            try #require(try portaudit(["snapshot", "--db", db, "--quiet"] + walk).status == 0)
            try DatabaseQueue(path: db).read { db in
                let host = try #require(try Int64.fetchOne(db, sql: "SELECT host_id FROM snapshot ORDER BY id DESC LIMIT 1"))
                let stored = try #require(try OpenState.cached(db, host: host), "no open_state row")
                let states = try Self.openStates(db, host: host)
                #expect(states.count >= 3)
                #expect(stored.listeners == states.count)
                #expect(stored.digest == OpenState.digest(of: states.flatMap(\.sockets), namespace: \.netns))
                let fromHistory = try HolderCache.knownFromHistory(db, host: host)
                let fromRow = try #require(try OpenState.holders(db, host: host))
                #expect(fromRow.mapValues(\.sortedHolders) == fromHistory.mapValues(\.sortedHolders))
                #expect(fromRow.count == fromHistory.count)
                for socket in fixture.sockets {
                    #expect(fromRow[socket.inode]?.holders.map(\.process.pid).sorted() == socket.pids.sorted(), "\(socket.inode)")
                }
            }
        }
    }

    /// The host's open intervals, as states rebuilt from the history alone (each socket with
    /// its namespace); each one's fingerprint is checked against the `state_hash` the writer stored.
    private static func openStates(_ db: Database, host: Int64) throws -> [ListenerState] {
        let rows = try Row.fetchAll(db, sql: """
            SELECT i.id, i.state_hash, n.inode AS netns, l.protocol, l.address, l.port, l.interface,
                   h.inode, h.socket_uid, h.fd, h.unattributed_reason, p.pid, p.start_ticks
            FROM listener_interval i JOIN listener l ON l.id = i.listener_id JOIN netns n ON n.id = l.netns_id
            JOIN holding h ON h.interval_id = i.id LEFT JOIN process p ON p.id = h.process_id
            WHERE i.last_snapshot_id IS NULL AND n.host_id = ?
            """, arguments: [host])
        var states: [Int64: (hash: Int64, state: ListenerState)] = [:]
        for row in rows {
            let key = ListenerKey(proto: TransportProtocol(rawValue: row["protocol"])!, address: row["address"],
                                  port: UInt16(row["port"] as Int), interface: row["interface"])
            var entry = states[row["id"]]
                ?? (row["state_hash"], ListenerState(key: key, sockets: [], netns: UInt64(bitPattern: row["netns"])))
            let inode = UInt64(bitPattern: row["inode"] as Int64)
            var socket = entry.state.sockets.first { $0.inode == inode }
                ?? ListeningSocket(key: key, inode: inode, uid: UInt32(row["socket_uid"] as Int64), netns: entry.state.netns)
            if let pid = row["pid"] as Int32? {
                socket.holders.append(SocketHolder(process: ProcessIdentity(pid: pid, startTicks: UInt64(bitPattern: row["start_ticks"])),
                                                   fd: row["fd"]))
            } else {
                socket.unattributedReason = row["unattributed_reason"]
            }
            entry.state.sockets.removeAll { $0.inode == inode }
            entry.state.sockets.append(socket)
            states[row["id"]] = entry
        }
        for (id, entry) in states { #expect(entry.state.fingerprint == entry.hash, "interval \(id)") }
        return states.values.map(\.state)
    }

    /// A change to the history made by hand (or by anything but the collector) deletes the
    /// row, so the next snapshot reads the history and writes it again: here it reopens a
    /// listener whose interval was closed by hand.
    @Test func historyEditedByHandIsNotHiddenByTheRow() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let db = directory.file("store.db")
        let fixture = try Listeners("tcp4")
        defer { fixture.stop() }
        let port = fixture.sockets[0].port
        for _ in 0..<2 { try #require(try portaudit("snapshot", "--db", db, "--quiet").status == 0) }
        let queue = try DatabaseQueue(path: db)
        func rows() throws -> Int { try queue.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM open_state") ?? -1 } }
        func usageDigests() throws -> Int { try queue.read { try Int.fetchOne($0, sql: "SELECT count(usage_digest) FROM open_state") ?? -1 } }
        let openInterval = "SELECT i.id FROM listener_interval i JOIN listener l ON l.id = i.listener_id WHERE l.port = \(port) AND i.last_snapshot_id IS NULL"
        func openIntervals() throws -> Int { try queue.read { try Int.fetchAll($0, sql: openInterval).count } }

        let closedByHand = try #require(try queue.read { try Int64.fetchOne($0, sql: openInterval) })
        for edit in [
            "UPDATE listener_interval SET last_snapshot_id = 1, ended_snapshot_id = 2 WHERE id = \(closedByHand)",
            "UPDATE holding SET fd = fd + 1 WHERE interval_id = (\(openInterval))",
            "DELETE FROM holding WHERE rowid = (SELECT max(rowid) FROM holding)",
            "INSERT INTO holding (interval_id, inode, socket_uid, unattributed_reason) SELECT (\(openInterval)), 1, 0, 'by hand'",
            "DELETE FROM holding WHERE interval_id = \(closedByHand)",
            "DELETE FROM listener_interval WHERE id = \(closedByHand)",
            // What the intervals name: these rewrite a value with itself, which fires the triggers all the same.
            "UPDATE listener SET port = port WHERE port = \(port)",
            "UPDATE netns SET inode = inode",
            "UPDATE process SET start_ticks = start_ticks WHERE pid = \(fixture.sockets[0].pid)",
        ] {
            try #require(try rows() == 1, "before \(edit)")
            try queue.write { try $0.execute(sql: edit) }
            #expect(try rows() == 0, "after \(edit)")
            try #require(try portaudit("snapshot", "--db", db, "--quiet").status == 0)
            #expect(try openIntervals() == 1, "after \(edit)")
        }
        // What the intervals do not depend on leaves the row alone: a namespace's name (the
        // collector records one given since), a command line (`config cmdline redact`).
        for edit in ["UPDATE netns SET name = 'by hand'", "UPDATE process SET cmdline = NULL WHERE pid = \(fixture.sockets[0].pid)"] {
            try queue.write { try $0.execute(sql: edit) }
            #expect(try rows() == 1, "after \(edit)")
        }

        func usage() throws -> [[Int]] {
            try queue.read { db in
                try Row.fetchAll(db, sql: """
                    SELECT u.connections, u.accept_queue FROM listener_usage u JOIN listener l ON l.id = u.listener_id
                    WHERE l.port = ? AND l.protocol = 'tcp' ORDER BY u.snapshot_id
                    """, arguments: [port]).map { [$0[0] as Int, $0[1] as Int] }
            }
        }
        // Connections that come while the listeners stay as they were are recorded all the same.
        try #require(try usageDigests() == 1)
        let clients = try (0..<2).map { _ in try connectLoopback(port: port) }
        defer { clients.forEach { close($0) } }
        try #require(try portaudit("snapshot", "--db", db, "--quiet").status == 0)
        #expect(try usage() == [[2, 2]])
        try #require(try usageDigests() == 1)
        // Usage rows written by hand make the row forget its usage digest, and only that.
        for edit in ["INSERT INTO listener_usage (listener_id, snapshot_id, connections, accept_queue) SELECT id, 1, 9, 9 FROM listener WHERE port = \(port) AND protocol = 'tcp'",
                     "UPDATE listener_usage SET connections = 7", "DELETE FROM listener_usage"] {
            try queue.write { try $0.execute(sql: edit) }
            #expect(try usageDigests() == 0, "after \(edit)")
            #expect(try rows() == 1, "after \(edit)")
            try #require(try portaudit("snapshot", "--db", db, "--quiet").status == 0)
            try #require(try usageDigests() == 1)
        }
        // The last edit deleted every usage row: the snapshot after it wrote the listener's again.
        #expect(try usage() == [[2, 2]])
    }
}

extension OpenStateTests {
    /// SQLite drops a table's triggers with the table: a migration that rebuilds one of these
    /// tables and forgets them would leave the row in place while the history changes.
    @Test func everyTriggerThatDropsTheRowExists() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        _ = try Store(path: directory.file("store.db"), access: .readWrite)
        let triggers = try DatabaseQueue(path: directory.file("store.db")).read { db in
            try Row.fetchAll(db, sql: "SELECT tbl_name, name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'open_state_on_%'")
                .map { "\($0[0] as String) \($0[1] as String)" }
        }
        let expected = [("listener_interval", "interval", ["insert", "update", "delete"]), ("holding", "holding", ["insert", "update", "delete"]),
                        ("listener", "listener", ["update", "delete"]), ("netns", "netns", ["update", "delete"]),
                        ("process", "process", ["update", "delete"]), ("listener_usage", "usage", ["insert", "update", "delete"])]
            .flatMap { table, name, events in events.map { "\(table) open_state_on_\(name)_\($0)" } }
        #expect(triggers.sorted() == expected.sorted())
    }

    /// A machine with no listener at all: the row holds no socket, and is read back as such.
    @Test func machineWithoutListenersKeepsARow() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try Store(path: directory.file("store.db"), access: .readWrite)
        let nothing = AlteredLinuxSource { $0.sockets = [] }
        for _ in 0..<2 {
            let summary = try store.snapshot(from: nothing)
            #expect(summary.listeners == 0 && summary.opened == 0)
        }
        try DatabaseQueue(path: directory.file("store.db")).read { db in
            let host = try #require(try Int64.fetchOne(db, sql: "SELECT host_id FROM snapshot ORDER BY id DESC LIMIT 1"))
            let cached = try #require(try OpenState.cached(db, host: host))
            #expect(cached.listeners == 0)
            #expect(try OpenState.holders(db, host: host) == [:])
        }
    }

    /// The fingerprint kept as `state_hash` reads a socket's reason as the writer stores it; for
    /// what the collector gives (a reason exactly when there is no holder) it is the hash it
    /// was before, so that stores written earlier see no change.
    @Test func fingerprintOfCollectedSocketsIsUnchanged() {
        func former(_ state: ListenerState) -> Int64 {
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            func mix(_ value: UInt64) {
                for shift in stride(from: 0, to: 64, by: 8) { hash = (hash ^ ((value >> UInt64(shift)) & 0xff)) &* 0x100_0000_01b3 }
            }
            for socket in state.sockets.sorted(by: { $0.inode < $1.inode }) {
                mix(socket.inode)
                mix(UInt64(socket.uid))
                for holder in socket.holders.sorted() {
                    mix(UInt64(bitPattern: Int64(holder.process.pid)))
                    mix(holder.process.startTicks)
                    mix(UInt64(bitPattern: Int64(holder.fd)))
                }
                for byte in (socket.unattributedReason ?? "").utf8 { mix(UInt64(byte)) }
                mix(0xff)
            }
            return Int64(bitPattern: hash)
        }
        let collected = Self.sockets.filter { $0.holders.isEmpty == ($0.unattributedReason != nil) }
        #expect(collected.count == Self.sockets.count - 1)
        for socket in collected {
            let state = ListenerState(key: socket.key, sockets: [socket])
            #expect(state.fingerprint == former(state), "\(socket.inode)")
        }
        let shared = ListenerState(key: Self.sockets[2].key, sockets: [Self.sockets[3], Self.sockets[2]])
        #expect(shared.fingerprint == former(shared))
        // Without a reason, no holder reads as "no-process", as it is stored.
        var given = Self.sockets[6]
        given.unattributedReason = UnattributedReason.noProcess
        #expect(ListenerState(key: given.key, sockets: [Self.sockets[6]]).fingerprint == ListenerState(key: given.key, sockets: [given]).fingerprint)
    }
}

private extension KnownHolders.Socket {
    var sortedHolders: KnownHolders.Socket { KnownHolders.Socket(holders: holders.sorted(), unattributedReason: unattributedReason) }
}
