import Foundation
import GRDB

/// Everything the store knows about one port.
public struct PortHistory: Encodable, Sendable {
    public var port: UInt16
    /// The protocol asked for; nil means both.
    public var proto: TransportProtocol?
    /// The first snapshot that saw the port listening; nil if never seen.
    public var firstSeen: Date?
    /// The last snapshot before `firstSeen`, which did not see it; nil when the port was
    /// already listening at the first snapshot of the store.
    public var appearedAfter: Date?
    public var firstSeenStatement: String
    public var registration: PortRegistration
    public var intervals: [ListenerInterval]
    /// The store's most recent snapshot: "still listening" means "listening then".
    public var latestSnapshot: Date?
    /// The latest prune's cut: what ended before it is no longer known.
    public var prunedBefore: Date?

    enum CodingKeys: String, CodingKey {
        case port, proto = "protocol", firstSeen, appearedAfter, firstSeenStatement, registration, intervals, latestSnapshot,
             prunedBefore
    }
}

/// A listener continuously seen with the same sockets and holders.
public struct ListenerInterval: Encodable, Sendable {
    public var proto: TransportProtocol
    public var address: String
    public var port: UInt16
    public var interface: String
    /// "appeared" (nothing listened there at the snapshot before) or "changed" (it
    /// continues an interval of the same listener whose holders or sockets differed).
    public var began: String
    /// The snapshot before `firstSeen`, if any.
    public var appearedAfter: Date?
    public var firstSeen: Date
    /// The last snapshot that saw it (the latest snapshot while it is still listening).
    public var lastSeen: Date
    /// The first snapshot that no longer saw it in this state; nil while listening.
    public var goneBy: Date?
    public var listening: Bool
    /// "closed" (nothing listens there any more) or "replaced" (it goes on with other holders or sockets).
    public var ended: String?
    public var sockets: Int
    public var processes: [HolderView]
    public var unattributed: [UnattributedSocket]
    /// Inode of the network namespace it listened in, its /run/netns name, and whether it
    /// is the namespace the snapshots ran in (the host's).
    public var netns: UInt64
    public var netnsName: String?
    public var netnsIsHost: Bool
    /// Gaps in the snapshots between `firstSeen` and `lastSeen`: nothing is known about the
    /// listener during them, so the interval is not a claim that it listened then.
    public var unobserved: [CoverageGap] = []
    /// A gap lies between `appearedAfter` and `firstSeen`: it began at an unknown time in it,
    /// as `changes` marks such an event `across_gap`.
    public var beganAcrossGap = false

    enum CodingKeys: String, CodingKey {
        case proto = "protocol", address, port, interface, began, appearedAfter, firstSeen, lastSeen, goneBy, listening,
             ended, sockets, processes, unattributed, netns, netnsName, netnsIsHost, unobserved, beganAcrossGap
    }
}

/// `--netns ID` named no namespace the store has seen.
public struct UnknownNamespace: Error, CustomStringConvertible {
    public var selection: NamespaceSelection
    public var description: String {
        "no network namespace '\(selection)' in the store: give host, all, or an inode or /run/netns name that a snapshot saw"
    }
}

extension Store {
    public func history(port: UInt16, proto: TransportProtocol? = nil, netns: NamespaceSelection = .all) throws -> PortHistory {
        try read { db in try HistoryQuery(db: db).history(port: port, proto: proto, netns: netns) }
    }
}

struct HistoryQuery {
    let db: Database

    /// The namespace the snapshots of the host in `hostColumn` ran in: its newest snapshot's,
    /// the last entry of snapshot_by_time for the host (one index probe, however long the history).
    static func hostNetns(of hostColumn: String = "n.host_id") -> String {
        "(SELECT s.netns_id FROM snapshot s WHERE s.host_id = \(hostColumn) ORDER BY s.started_at DESC LIMIT 1)"
    }

    /// The intervals of one port (listener_by_port, then interval_by_listener), each with the
    /// snapshot before its first: `+b.host_id` keeps SQLite off snapshot_by_time, whose
    /// host_id prefix would hand it every snapshot of the host to sort, and walks the rowid
    /// down from the interval's first snapshot instead (one step on a one-host store).
    static func sql(proto: Bool, netns: NamespaceSelection) -> String {
        var sql = """
            SELECT i.id, i.listener_id, l.protocol, l.address, l.port, l.interface, i.socket_count,
                   n.host_id, i.first_snapshot_id, f.started_at AS first_at,
                   la.started_at AS last_at, g.started_at AS gone_at, i.ended_snapshot_id,
                   (SELECT b.started_at FROM snapshot b WHERE +b.host_id = n.host_id AND b.id < i.first_snapshot_id
                    ORDER BY b.id DESC LIMIT 1) AS after_at,
                   n.inode AS netns_inode, n.name AS netns_name, n.id = \(Self.hostNetns()) AS netns_is_host
            FROM listener l
            JOIN netns n ON n.id = l.netns_id
            JOIN listener_interval i ON i.listener_id = l.id
            JOIN snapshot f ON f.id = i.first_snapshot_id
            LEFT JOIN snapshot la ON la.id = i.last_snapshot_id
            LEFT JOIN snapshot g ON g.id = i.ended_snapshot_id
            WHERE l.port = ?
            """
        if proto { sql += " AND l.protocol = ?" }
        switch netns {
        case .all: break
        case .host: sql += " AND n.id = \(Self.hostNetns())"
        case .id: sql += " AND (n.inode IS ? OR n.name = ?)"
        }
        return sql + " ORDER BY f.started_at, l.protocol, l.address, n.inode, i.id"
    }

    /// The newest snapshot time of one host: the top of snapshot_by_time for it.
    static let latestSnapshotSQL = "SELECT max(started_at) FROM snapshot WHERE host_id = ?"
    /// The newest snapshot time of the store, host by host.
    static let anySnapshotSQL = "SELECT max((SELECT max(s.started_at) FROM snapshot s WHERE s.host_id = h.id)) FROM host h"

    func history(port: UInt16, proto: TransportProtocol?, netns: NamespaceSelection = .all) throws -> PortHistory {
        var arguments: StatementArguments = [Int(port)]
        if let proto { arguments += [proto.rawValue] }
        if case .id(let text) = netns {
            try NamespaceFilter.requireKnown(netns, in: db)
            arguments += [UInt64(text).map { Int64(bitPattern: $0) }, text]
        }
        let rows = try Row.fetchAll(db, sql: Self.sql(proto: proto != nil, netns: netns), arguments: arguments)

        let latest = try latestSnapshots(hosts: Set(rows.map { $0["host_id"] as Int64 }))
        let holders = try holdings(intervals: rows.map { $0["id"] as Int64 })
        let starts = Set(rows.map { Pair($0["listener_id"], $0["first_snapshot_id"]) })
        let ends = Set(rows.compactMap { row in (row["ended_snapshot_id"] as Int64?).map { Pair(row["listener_id"], $0) } })

        var gaps: [Int64: [CoverageGap]] = [:]
        for host in Set(rows.map { $0["host_id"] as Int64 }) { gaps[host] = try CoverageQuery(db: db).gaps(host: host) }

        var intervals: [ListenerInterval] = []
        for row in rows {
            let id: Int64 = row["id"]
            let open = (row["last_at"] as Int64?) == nil
            let endedBy: Int64? = row["ended_snapshot_id"]
            let lastAt: Int64 = row["last_at"] ?? latest[row["host_id"]] ?? row["first_at"]
            let (processes, unattributed) = holders[id] ?? ([], [])
            intervals.append(ListenerInterval(
                proto: TransportProtocol(rawValue: row["protocol"]) ?? .tcp,
                address: row["address"], port: UInt16(row["port"] as Int), interface: row["interface"],
                began: ends.contains(Pair(row["listener_id"], row["first_snapshot_id"])) ? "changed" : "appeared",
                appearedAfter: (row["after_at"] as Int64?).map(Timestamp.date(milliseconds:)),
                firstSeen: Timestamp.date(milliseconds: row["first_at"]),
                lastSeen: Timestamp.date(milliseconds: lastAt),
                goneBy: (row["gone_at"] as Int64?).map(Timestamp.date(milliseconds:)),
                listening: open,
                ended: open ? nil : (starts.contains(Pair(row["listener_id"], endedBy ?? -1)) ? "replaced" : "closed"),
                sockets: row["socket_count"], processes: processes, unattributed: unattributed,
                netns: UInt64(bitPattern: row["netns_inode"] as Int64), netnsName: row["netns_name"],
                netnsIsHost: row["netns_is_host"] ?? false))
            if let last = intervals.last, let hostGaps = gaps[row["host_id"]] {
                intervals[intervals.count - 1].unobserved = hostGaps.within(last.firstSeen, last.lastSeen)
                intervals[intervals.count - 1].beganAcrossGap = last.appearedAfter.map { !hostGaps.within($0, last.firstSeen).isEmpty } ?? false
            }
        }

        let first = intervals.earliest
        let latestOverall = latest.values.max().map(Timestamp.date(milliseconds:))
        let cut = try CoverageQuery(db: db).latestCut().map(Timestamp.date(milliseconds:))
        return PortHistory(
            port: port, proto: proto, firstSeen: first?.firstSeen, appearedAfter: first?.appearedAfter,
            firstSeenStatement: Self.statement(first: first, prunedBefore: cut),
            registration: PortRegistration(port: port, proto: proto),
            intervals: intervals, latestSnapshot: try latestOverall ?? anySnapshot(), prunedBefore: cut)
    }

    static func statement(first: ListenerInterval?, prunedBefore cut: Date?) -> String {
        guard let first else {
            // Pruned history is unknown, not empty: the port may have listened before the cut.
            return cut.map { "not seen listening since \(Timestamp.iso($0)); history before it was pruned" } ?? "never seen listening"
        }
        if let after = first.appearedAfter {
            return "appeared between \(Timestamp.iso(after)) (not listening) and \(Timestamp.iso(first.firstSeen)) (listening)"
                + (first.beganAcrossGap ? ", across a gap in the snapshots" : "")
        }
        return "already listening at the first snapshot (\(Timestamp.iso(first.firstSeen)))"
    }

    private struct Pair: Hashable {
        var a: Int64, b: Int64
        init(_ a: Int64, _ b: Int64) { self.a = a; self.b = b }
    }

    private func anySnapshot() throws -> Date? {
        try Int64.fetchOne(db, sql: Self.anySnapshotSQL).map(Timestamp.date(milliseconds:))
    }

    private func latestSnapshots(hosts: Set<Int64>) throws -> [Int64: Int64] {
        var latest: [Int64: Int64] = [:]
        for host in hosts {
            latest[host] = try Int64.fetchOne(db, sql: Self.latestSnapshotSQL, arguments: [host])
        }
        return latest
    }

    /// The holders of a list of intervals (a JSON array), through holding_by_interval.
    static let holdingsSQL = """
        SELECT h.interval_id, h.inode, h.socket_uid, h.fd, h.unattributed_reason,
               p.pid, p.name, p.user, p.uid, p.exe, p.cmdline, p.ppid, p.started_at,
               p.container_runtime, p.container_id
        FROM holding h LEFT JOIN process p ON p.id = h.process_id
        WHERE h.interval_id IN (SELECT value FROM json_each(?))
        ORDER BY h.interval_id, p.pid, h.fd
        """

    func holdings(intervals: [Int64]) throws -> [Int64: ([HolderView], [UnattributedSocket])] {
        guard !intervals.isEmpty else { return [:] }
        var result: [Int64: ([HolderView], [UnattributedSocket])] = [:]
        let rows = try Row.fetchCursor(db, sql: Self.holdingsSQL, arguments: [String(describing: intervals)])
        while let row = try rows.next() {
            let interval: Int64 = row["interval_id"]
            let inode = UInt64(bitPattern: row["inode"] as Int64)
            if let reason: String = row["unattributed_reason"] {
                result[interval, default: ([], [])].1.append(
                    UnattributedSocket(inode: inode, socketUid: UInt32(truncatingIfNeeded: row["socket_uid"] as Int64), reason: reason))
            } else {
                result[interval, default: ([], [])].0.append(HolderView(
                    pid: row["pid"], name: row["name"], user: row["user"],
                    uid: (row["uid"] as Int64?).map { UInt32(truncatingIfNeeded: $0) },
                    exe: row["exe"], cmdline: row["cmdline"], ppid: row["ppid"],
                    startedAt: (row["started_at"] as Int64?).map(Timestamp.date(milliseconds:)),
                    fd: row["fd"], inode: inode,
                    container: (row["container_runtime"] as String?).map { ContainerIdentity(runtime: $0, id: row["container_id"] ?? "") }))
            }
        }
        return result
    }
}


extension PortHistory {
    /// Absent values are written as null, so every record has every field.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(port, forKey: .port)
        try c.encode(proto, forKey: .proto)
        try c.encode(firstSeen, forKey: .firstSeen)
        try c.encode(appearedAfter, forKey: .appearedAfter)
        try c.encode(firstSeenStatement, forKey: .firstSeenStatement)
        try c.encode(registration, forKey: .registration)
        try c.encode(intervals, forKey: .intervals)
        try c.encode(latestSnapshot, forKey: .latestSnapshot)
        try c.encode(prunedBefore, forKey: .prunedBefore)
    }
}


extension ListenerInterval {
    /// Absent values are written as null, so every record has every field.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(proto, forKey: .proto)
        try c.encode(address, forKey: .address)
        try c.encode(port, forKey: .port)
        try c.encode(interface, forKey: .interface)
        try c.encode(began, forKey: .began)
        try c.encode(appearedAfter, forKey: .appearedAfter)
        try c.encode(firstSeen, forKey: .firstSeen)
        try c.encode(lastSeen, forKey: .lastSeen)
        try c.encode(goneBy, forKey: .goneBy)
        try c.encode(listening, forKey: .listening)
        try c.encode(ended, forKey: .ended)
        try c.encode(sockets, forKey: .sockets)
        try c.encode(processes, forKey: .processes)
        try c.encode(unattributed, forKey: .unattributed)
        try c.encode(netns, forKey: .netns)
        try c.encode(netnsName, forKey: .netnsName)
        try c.encode(netnsIsHost, forKey: .netnsIsHost)
        try c.encode(unobserved, forKey: .unobserved)
        try c.encode(beganAcrossGap, forKey: .beganAcrossGap)
    }
}

extension [ListenerInterval] {
    /// The interval first seen earliest, where a port's history begins.
    var earliest: ListenerInterval? { self.min { $0.firstSeen < $1.firstSeen } }
}
