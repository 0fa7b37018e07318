import Foundation
import GRDB

/// A program as people name it: a pid, or a name (the kernel's 15-character name or the
/// file name of its executable).
public enum ProcessSelector: Sendable, Equatable {
    case pid(Int32)
    case name(String)

    public struct Invalid: Error, CustomStringConvertible {
        public var description: String
    }

    public init(parsing text: String) throws {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let pid = Int32(trimmed) {
            guard pid > 0 else { throw Invalid(description: "invalid pid '\(text)': a pid is a number from 1") }
            self = .pid(pid)
        } else if !trimmed.isEmpty, trimmed.allSatisfy({ $0 != "/" }) || trimmed.hasPrefix("/") {
            self = .name(trimmed)
        } else {
            throw Invalid(description: "invalid process '\(text)': give a pid, a process name or an executable's absolute path")
        }
    }
}

extension Store {
    /// Every listener the selected processes held, one row per process and continuous stretch,
    /// in the chosen network namespaces.
    public func processHistory(_ selector: ProcessSelector, netns: NamespaceSelection = .all) throws -> RecordTable {
        try read { db in try ProcessHistoryQuery(db: db).run(selector, netns: netns) }
    }
}

struct ProcessHistoryQuery {
    let db: Database

    static let fields = [FieldName.pid, FieldName.process, FieldName.user, FieldName.cmdline, "process_started",
                         FieldName.proto, FieldName.address, FieldName.port, FieldName.interface,
                         FieldName.firstSeen, FieldName.lastSeen, FieldName.goneBy, FieldName.listening,
                         FieldName.service, FieldName.hostname] + RowNamespace.fieldNames

    private struct Stretch {
        var row: Row
        var firstSnapshot: Int64
        var endedSnapshot: Int64?
        var firstAt: Int64
        var lastAt: Int64
        var goneAt: Int64?
        var listening: Bool
    }

    /// The processes a selector means, each test on an index: process_by_pid, process_by_exe,
    /// or process_by_name OR process_by_exe_name (migration 0006, whose expression this must
    /// spell exactly; the instr keeps a path without '/' from counting as a file name).
    static func condition(_ selector: ProcessSelector) -> (sql: String, arguments: StatementArguments) {
        switch selector {
        case .pid(let pid):
            return ("p.pid = ?", [pid])
        case .name(let path) where path.hasPrefix("/"):
            // The kernel names a process's executable with every link resolved: /usr/bin/python3
            // runs as /usr/bin/python3.11, /bin/nc (merged /usr) as /usr/bin/nc.openbsd. The
            // link is read now, here: one repointed since (an upgrade) finds its new target only.
            if let resolved = ProcFiles.realPath(path), resolved != path {
                return ("p.exe IN (?, ?)", [path, resolved])
            }
            return ("p.exe = ?", [path])
        case .name(let name):
            return ("(p.name = ? OR (replace(p.exe, rtrim(p.exe, replace(p.exe, '/', '')), '') = ? AND instr(p.exe, '/') > 0))",
                    [name, name])
        }
    }

    static func sql(condition: String) -> String {
        """
            SELECT DISTINCT p.id AS process_id, p.pid, p.name, p.user, p.cmdline, p.started_at AS process_started,
                   l.id AS listener_id, l.protocol, l.address, l.port, l.interface, h.hostname, n.host_id,
                   n.inode AS netns_inode, n.name AS netns_name, n.id = \(HistoryQuery.hostNetns()) AS netns_is_host,
                   i.first_snapshot_id, i.ended_snapshot_id, f.started_at AS first_at, la.started_at AS last_at,
                   g.started_at AS gone_at
            FROM process p
            JOIN holding hd ON hd.process_id = p.id
            JOIN listener_interval i ON i.id = hd.interval_id
            JOIN listener l ON l.id = i.listener_id
            JOIN netns n ON n.id = l.netns_id
            JOIN host h ON h.id = n.host_id
            JOIN snapshot f ON f.id = i.first_snapshot_id
            LEFT JOIN snapshot la ON la.id = i.last_snapshot_id
            LEFT JOIN snapshot g ON g.id = i.ended_snapshot_id
            WHERE \(condition)
            ORDER BY p.id, l.id, i.first_snapshot_id
            """
    }

    func run(_ selector: ProcessSelector, netns: NamespaceSelection = .all) throws -> RecordTable {
        let namespaceFilter = try NamespaceFilter(netns, db: db)
        let (condition, arguments) = Self.condition(selector)
        let rows = try Row.fetchAll(db, sql: Self.sql(condition: condition), arguments: arguments)
            .filter { namespaceFilter.admits(RowNamespace($0)) }
        var latest: [Int64: Int64] = [:]
        // One stretch per process and listener while it held it without a gap: intervals
        // that only differ by other holders follow each other.
        var stretches: [Stretch] = []
        for row in rows {
            let hostID: Int64 = row["host_id"]
            if latest[hostID] == nil {
                latest[hostID] = try Int64.fetchOne(db, sql: HistoryQuery.latestSnapshotSQL, arguments: [hostID])
            }
            let firstAt: Int64 = row["first_at"]
            let open = (row["last_at"] as Int64?) == nil
            let stretch = Stretch(row: row, firstSnapshot: row["first_snapshot_id"], endedSnapshot: row["ended_snapshot_id"],
                                  firstAt: firstAt, lastAt: row["last_at"] ?? latest[hostID] ?? firstAt,
                                  goneAt: row["gone_at"], listening: open)
            if var last = stretches.last,
               (last.row["process_id"] as Int64) == (row["process_id"] as Int64),
               (last.row["listener_id"] as Int64) == (row["listener_id"] as Int64),
               last.endedSnapshot == stretch.firstSnapshot {
                last.endedSnapshot = stretch.endedSnapshot
                last.lastAt = stretch.lastAt
                last.goneAt = stretch.goneAt
                last.listening = stretch.listening
                stretches[stretches.count - 1] = last
            } else {
                stretches.append(stretch)
            }
        }
        stretches.sort { a, b in
            (a.firstAt, a.row["port"] as Int, a.row["pid"] as Int) < (b.firstAt, b.row["port"] as Int, b.row["pid"] as Int)
        }
        var table = RecordTable(fields: Self.fields)
        for s in stretches {
            let proto = TransportProtocol(rawValue: s.row["protocol"]) ?? .tcp
            let port = UInt16(s.row["port"] as Int)
            let pid: Int64 = s.row["pid"]
            let name: String = s.row["name"]
            let user: String? = s.row["user"]
            let cmdline: String? = s.row["cmdline"]
            let started: Int64 = s.row["process_started"]
            let address: String = s.row["address"]
            let interface: String = s.row["interface"]
            let hostname: String = s.row["hostname"]
            var values: [FieldValue] = [.int(pid), .text(name), .optional(user), .optional(cmdline)]
            values.append(.time(Timestamp.date(milliseconds: started)))
            values += [.text(proto.rawValue), .text(address), .integer(port), .text(interface)]
            values += [.time(Timestamp.date(milliseconds: s.firstAt)), .time(Timestamp.date(milliseconds: s.lastAt))]
            values += [.optional(s.goneAt.map(Timestamp.date(milliseconds:))), .bool(s.listening)]
            values += [.optional(ServiceRegistry.name(port: port, proto: proto)), .text(hostname)]
            table.append(values + RowNamespace(s.row).fields)
        }
        return table
    }
}
