import Foundation

/// `now` and `history` as flat rows (one per holder of each socket or interval), for JSON
/// Lines and CSV, with the field names of every other command.
extension CurrentListener {
    public static let recordFields = [FieldName.proto, FieldName.address, FieldName.port, FieldName.interface,
                                      "inode", "socket_uid", FieldName.pid, FieldName.process, FieldName.user,
                                      FieldName.cmdline, "fd", "unattributed", FieldName.service]

    public static func records(_ listeners: [CurrentListener]) -> RecordTable {
        var table = RecordTable(fields: recordFields)
        for listener in listeners {
            let base: [FieldValue] = [.text(listener.proto.rawValue), .text(listener.address), .integer(listener.port),
                                      .text(listener.interface), .integer(listener.inode), .integer(listener.socketUid)]
            if listener.processes.isEmpty {
                table.append(base + [.null, .null, .null, .null, .null, .optional(listener.unattributed), .optional(listener.service)])
            }
            for holder in listener.processes {
                table.append(base + [.integer(holder.pid), .text(holder.name), .optional(holder.user), .optional(holder.cmdline),
                                     .optional(holder.fd), .null, .optional(listener.service)])
            }
        }
        return table
    }
}

extension PortHistory {
    public static let recordFields = [FieldName.proto, FieldName.address, FieldName.port, FieldName.interface,
                                      "began", "appeared_after", FieldName.firstSeen, FieldName.lastSeen,
                                      FieldName.goneBy, FieldName.listening, "ended", "sockets",
                                      FieldName.pid, FieldName.process, FieldName.user, FieldName.cmdline,
                                      "inode", "unattributed", FieldName.service, "began_across_gap", FieldName.acrossGap]

    /// `across_gap`: the interval spans a gap in the snapshots (`unobserved` in the JSON).
    public var records: RecordTable {
        var table = RecordTable(fields: Self.recordFields)
        for interval in intervals {
            let service = FieldValue.optional(ServiceRegistry.name(port: interval.port, proto: interval.proto))
            let base: [FieldValue] = [
                .text(interval.proto.rawValue), .text(interval.address), .integer(interval.port), .text(interval.interface),
                .text(interval.began), .optional(interval.appearedAfter), .time(interval.firstSeen), .time(interval.lastSeen),
                .optional(interval.goneBy), .bool(interval.listening), .optional(interval.ended), .integer(interval.sockets),
            ]
            let gaps: [FieldValue] = [.bool(interval.beganAcrossGap), .bool(!interval.unobserved.isEmpty)]
            for holder in interval.processes {
                table.append(base + [.integer(holder.pid), .text(holder.name), .optional(holder.user), .optional(holder.cmdline),
                                     .integer(holder.inode), .null, service] + gaps)
            }
            for socket in interval.unattributed {
                table.append(base + [.null, .null, .null, .null, .integer(socket.inode), .text(socket.reason), service] + gaps)
            }
        }
        return table
    }
}
