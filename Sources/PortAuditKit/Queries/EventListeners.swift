import Foundation
import GRDB

/// The namespace and host behind each row of the `port_events` view. The view (migration
/// 0002, frozen) names a listener by its address only, so the same port listening in two
/// namespaces of one host gives rows that do not say which is which. The interval that
/// begins (or ends) at the row's snapshot does.
struct EventListeners {
    let db: Database

    struct Event {
        var snapshot: Int64
        var key: ListenerKey
        var event: String
        var holdersBefore: String?
        var holdersAfter: String?
    }

    struct Resolved {
        var hostID: Int64?
        var namespace: RowNamespace?
    }

    private struct Candidate {
        var listenerID: Int64
        var namespace: RowNamespace
    }

    private struct GroupKey: Hashable {
        var host: Int64
        var key: ListenerKey
    }

    func resolve(_ events: [Event]) throws -> [Resolved] {
        guard !events.isEmpty else { return [] }
        var hostOf: [Int64: Int64] = [:]
        for row in try Row.fetchAll(db, sql: """
            SELECT id, host_id FROM snapshot WHERE id IN (SELECT value FROM json_each(?))
            """, arguments: [json(Set(events.map(\.snapshot)))]) {
            hostOf[row[0]] = row[1]
        }

        var groups: [GroupKey: [Candidate]] = [:]
        for row in try Row.fetchAll(db, sql: """
            SELECT l.id, n.host_id, l.protocol, l.address, l.port, l.interface,
                   n.inode, n.name, n.id = \(HistoryQuery.hostNetns) AS is_host
            FROM listener l JOIN netns n ON n.id = l.netns_id
            WHERE l.port IN (SELECT value FROM json_each(?))
            ORDER BY l.id
            """, arguments: [json(Set(events.map { Int64($0.key.port) }))]) {
            let key = ListenerKey(proto: TransportProtocol(rawValue: row[2]) ?? .tcp, address: row[3],
                                  port: UInt16(row[4] as Int), interface: row[5])
            let namespace = RowNamespace(inode: UInt64(bitPattern: row[6] as Int64), name: row[7], isHost: row[8] ?? false)
            groups[GroupKey(host: row[1], key: key), default: []].append(Candidate(listenerID: row[0], namespace: namespace))
        }

        // Only a port that listened in several namespaces of a host needs its intervals read.
        let ambiguous = groups.values.filter { $0.count > 1 }.flatMap { $0.map(\.listenerID) }
        var begins: [Int64: [Int64: Int64]] = [:]  // listener → first snapshot → interval
        var ends: [Int64: [Int64: Int64]] = [:]    // listener → ended snapshot → interval
        if !ambiguous.isEmpty {
            for row in try Row.fetchAll(db, sql: """
                SELECT id, listener_id, first_snapshot_id, ended_snapshot_id FROM listener_interval
                WHERE listener_id IN (SELECT value FROM json_each(?))
                """, arguments: [json(Set(ambiguous))]) {
                begins[row[1], default: [:]][row[2]] = row[0]
                if let ended: Int64 = row[3] { ends[row[1], default: [:]][ended] = row[0] }
            }
        }

        var used = Set<[Int64]>()
        return try events.map { event in
            guard let host = hostOf[event.snapshot] else { return Resolved(hostID: nil, namespace: nil) }
            var candidates = groups[GroupKey(host: host, key: event.key)] ?? []
            if candidates.count > 1 {
                candidates = candidates.filter { candidate in
                    let began = begins[candidate.listenerID]?[event.snapshot] != nil
                    let ended = ends[candidate.listenerID]?[event.snapshot] != nil
                    switch event.event {
                    case "opened": return began && !ended
                    case "closed": return ended && !began
                    default: return began && ended
                    }
                }
            }
            if candidates.count > 1 {
                // Same change at the same snapshot in several namespaces: the holders tell them apart.
                candidates = try candidates.filter { candidate in
                    try holders(ends[candidate.listenerID]?[event.snapshot]) == event.holdersBefore
                        && holders(begins[candidate.listenerID]?[event.snapshot]) == event.holdersAfter
                }
            }
            // Rows still alike are alike in every field: give each its own listener.
            let chosen = candidates.first { !used.contains([$0.listenerID, event.snapshot]) } ?? candidates.first
            if let chosen { used.insert([chosen.listenerID, event.snapshot]) }
            return Resolved(hostID: host, namespace: chosen?.namespace)
        }
    }

    /// The holders of an interval as `port_events` writes them.
    private func holders(_ interval: Int64?) throws -> String? {
        guard let interval else { return nil }
        return try String.fetchOne(db, sql: """
            SELECT group_concat(holder, ', ') FROM (
                SELECT DISTINCT coalesce(p.name || '[' || p.pid || ']', '?(' || hd.unattributed_reason || ')') AS holder
                FROM holding hd LEFT JOIN process p ON p.id = hd.process_id
                WHERE hd.interval_id = ? ORDER BY 1)
            """, arguments: [interval])
    }

    private func json(_ values: Set<Int64>) -> String { String(describing: Array(values)) }
}
