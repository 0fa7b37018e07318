import Foundation

/// Terminal text for listeners, holders and histories.
public struct TextStyle: Sendable {
    /// Cut to this many columns; nil prints everything whole.
    public var width: Int?
    public var utc: Bool
    /// Whether short times leave the year out. A table decides once for all its cells (see
    /// `renderTable`), so that one column never mixes two forms; nil decides per time.
    var shortTimesOmitYear: Bool?
    /// Hosts whose latest snapshot is too old for "listening then" to read as "now".
    public var staleHosts: Set<String> = []

    public init(width: Int?, utc: Bool) {
        self.width = width
        self.utc = utc
    }

    public func time(_ date: Date) -> String { Timestamp.human(date, utc: utc) }

    /// Two times that bound something, with milliseconds when whole seconds would read the
    /// same ("between 10:05:01 and 10:05:01" says nothing; watch checks are that close).
    func times(_ first: Date, _ second: Date) -> (String, String) {
        let fine = Timestamp.milliseconds(first) / 1000 == Timestamp.milliseconds(second) / 1000
        return (Timestamp.human(first, utc: utc, milliseconds: fine), Timestamp.human(second, utc: utc, milliseconds: fine))
    }
}

enum Endpoint {
    /// 127.0.0.1:22, [::1]:22, and %iface when bound to a device, as ss writes them.
    static func text(address: String, port: UInt16, interface: String) -> String {
        let host = IPAddressText.isIPv6(address) ? "[\(address)]" : address
        let device = interface.isEmpty ? "" : "%\(interface)"
        return "\(host)\(device):\(port)"
    }
}

extension HolderView {
    /// The command line, or the name when the command line is empty or unreadable.
    var commandText: String {
        if let cmdline, !cmdline.isEmpty { return cmdline }
        return "[\(name)]"
    }

    var userText: String { user ?? uid.map(String.init) ?? "?" }

    /// "[docker 3f4e5a6b7c8d] " before the command of a process in a container.
    var containerPrefix: String { container.map { "[\($0.shortText)] " } ?? "" }
}

enum NamespaceText {
    /// "host", the /run/netns name, or the inode.
    static func text(inode: UInt64, name: String?, isHost: Bool) -> String {
        isHost ? "host" : name ?? String(inode)
    }
}

public enum ListenerText {
    public static func now(_ listeners: [CurrentListener], style: TextStyle) -> String {
        // The namespace column appears only when there is more than the host's to tell apart.
        let showNamespace = Set(listeners.map(\.netns)).count > 1 || listeners.contains { !$0.netnsIsHost }
        var table = TextTable((showNamespace ? [.init("NETNS")] : []) + [
            .init("PROTO"), .init("LOCAL ADDRESS"), .init("PID", alignRight: true), .init("USER"),
            .init("COMMAND", flexible: true),
        ])
        for listener in listeners {
            let endpoint = Endpoint.text(address: listener.address, port: listener.port, interface: listener.interface)
            let namespace = showNamespace
                ? [NamespaceText.text(inode: listener.netns, name: listener.netnsName, isHost: listener.netnsIsHost)] : []
            if listener.processes.isEmpty {
                table.append(namespace + [listener.proto.rawValue, endpoint, "-", "-",
                                          "(no readable holder: \(listener.unattributed ?? "unknown"))"])
            }
            for (i, holder) in listener.processes.enumerated() {
                table.append((i == 0 ? namespace : namespace.map { _ in "" }) + [
                    i == 0 ? listener.proto.rawValue : "", i == 0 ? endpoint : "",
                    String(holder.pid), holder.userText, holder.containerPrefix + holder.commandText])
            }
        }
        if listeners.isEmpty { return "no listening sockets" }
        return table.render(width: style.width)
    }

    public static func history(_ history: PortHistory, style: TextStyle) -> String {
        var lines: [String] = []
        let proto = history.proto.map { "/\($0.rawValue)" } ?? ""
        let registered = history.registration.summary
        let range = history.registration.range
        lines.append("Port \(history.port)\(proto): \(registered.isEmpty ? "no registered service" : registered)")
        lines.append("Range: \(range.rawValue) (\(range.bounds.lowerBound)–\(range.bounds.upperBound))")
        guard let firstSeen = history.firstSeen else {
            let coverage = history.latestSnapshot.map { " (last snapshot \(style.time($0)))" } ?? " (the store has no snapshot yet)"
            if let cut = history.prunedBefore {
                lines.append("Not seen listening since \(style.time(cut)), when history before it was pruned\(coverage).")
            } else {
                lines.append("Never seen listening\(coverage).")
            }
            return lines.joined(separator: "\n")
        }
        if let after = history.appearedAfter {
            let (afterText, firstText) = style.times(after, firstSeen)
            lines.append("Appeared between \(afterText) (last snapshot without it)")
            lines.append("             and \(firstText) (first snapshot with it)")
            if history.intervals.earliest?.beganAcrossGap == true {
                lines.append("             across a gap in the snapshots: when in it is unknown")
            }
        } else {
            lines.append("Already listening at the store's first snapshot, \(style.time(firstSeen))")
        }
        for interval in history.intervals {
            lines.append("")
            let endpoint = Endpoint.text(address: interval.address, port: interval.port, interface: interval.interface)
            let sockets = interval.sockets > 1 ? " (\(interval.sockets) sockets)" : ""
            let namespace = interval.netnsIsHost ? ""
                : " in netns \(NamespaceText.text(inode: interval.netns, name: interval.netnsName, isHost: false))"
            lines.append("\(interval.proto.rawValue) \(endpoint)\(sockets)\(namespace)")
            switch (interval.began, interval.appearedAfter) {
            case ("changed", let after?):
                let (afterText, firstText) = style.times(after, interval.firstSeen)
                lines.append("  from \(firstText), holders changed since \(afterText)\(interval.beganAcrossGap ? " (across gap)" : "")")
            case (_, let after?):
                let (afterText, firstText) = style.times(after, interval.firstSeen)
                lines.append("  appeared after \(afterText), seen from \(firstText)\(interval.beganAcrossGap ? " (across gap)" : "")")
            default:
                lines.append("  seen from the store's first snapshot, \(style.time(interval.firstSeen))")
            }
            if interval.listening {
                lines.append("  still listening at the last snapshot, \(style.time(interval.lastSeen))")
            } else {
                let how = interval.ended == "replaced" ? "holders changed" : "gone"
                if let goneBy = interval.goneBy {
                    let (lastText, goneText) = style.times(interval.lastSeen, goneBy)
                    lines.append("  last seen \(lastText), \(how) by \(goneText)")
                } else {
                    lines.append("  last seen \(style.time(interval.lastSeen))")
                }
            }
            for gap in interval.unobserved {
                lines.append("  unknown from \(style.time(gap.from)) to \(style.time(gap.to)): no snapshot in \(DurationText.approximate(gap.duration))")
            }
            for holder in interval.processes {
                let started = holder.startedAt.map { ", started \(style.time($0))" } ?? ""
                lines.append("  pid \(holder.pid) \(holder.name) (\(holder.userText)\(started)): \(holder.containerPrefix)\(holder.commandText)")
            }
            for socket in interval.unattributed {
                lines.append("  no readable holder (\(socket.reason)), socket uid \(socket.socketUid)")
            }
        }
        return lines.map { line in style.width.map { TextTable.cut(line, to: $0) } ?? line }.joined(separator: "\n")
    }
}
