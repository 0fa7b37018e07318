import Foundation

/// How `portaudit snapshot` is run periodically: the files to write and the commands that
/// activate them, for cron or systemd, system-wide (root) or for one user.
public struct SchedulePlan: Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        case cron, systemd
    }

    public struct File: Sendable, Equatable {
        /// Absolute path on the target system.
        public var path: String
        public var content: String
    }

    public struct Invalid: Error, CustomStringConvertible {
        public var description: String
    }

    public var kind: Kind
    public var files: [File]
    /// Commands to run after writing the files (none for root's cron: cron reads /etc/cron.d).
    public var activate: [[String]]
    /// Commands to run before deleting them.
    public var deactivate: [[String]]

    public static let unitName = "portaudit-snapshot"
    static let marker = "# portaudit schedule"

    /// - Parameters:
    ///   - every: seconds between snapshots.
    ///   - user: nil for root (system-wide), else the user's name and home directory.
    public init(kind: Kind, every: Int, binary: String, store: String, user: (name: String, home: String)?) throws {
        guard every >= 60 else { throw Invalid(description: "--every must be at least 1m") }
        self.kind = kind
        let command = "\(Self.quote(binary)) snapshot --quiet --db \(Self.quote(store))"
        let interval = DurationText.exact(every)
        switch kind {
        case .cron:
            let when = try Self.cronExpression(every)
            if let user {
                files = [File(path: "/var/spool/cron/crontabs/\(user.name)",
                              content: "\(when) \(command) \(Self.marker) every \(interval)\n")]
                activate = []
            } else {
                files = [File(path: "/etc/cron.d/portaudit", content: """
                    # portaudit: record listening ports and their processes every \(interval).
                    # Written by `portaudit schedule install`; `portaudit schedule remove` deletes it.
                    SHELL=/bin/sh
                    PATH=/usr/sbin:/usr/bin:/sbin:/bin
                    \(when) root \(command)

                    """)]
                activate = []
            }
            deactivate = []
        case .systemd:
            let directory = user.map { "\($0.home)/.config/systemd/user" } ?? "/etc/systemd/system"
            let storeDirectory = (store as NSString).deletingLastPathComponent
            // System-wide, the service may write the store's directory and nothing else. A store
            // in /tmp or /var/tmp must stay visible: no private /tmp then.
            let inTmp = ["/tmp/", "/var/tmp/"].contains { storeDirectory.hasPrefix($0) || storeDirectory + "/" == $0 }
            let hardening = user != nil ? "" : """
                NoNewPrivileges=yes
                \(inTmp ? "" : "PrivateTmp=yes\n")ProtectSystem=strict
                ReadWritePaths=\(storeDirectory)

                """
            files = [
                File(path: "\(directory)/\(Self.unitName).service", content: """
                    # Written by `portaudit schedule install`; `portaudit schedule remove` deletes it.
                    [Unit]
                    Description=portaudit: record listening ports and their processes

                    [Service]
                    Type=oneshot
                    ExecStart=\(command)
                    Nice=10
                    IOSchedulingClass=idle
                    \(hardening)
                    """),
                File(path: "\(directory)/\(Self.unitName).timer", content: """
                    # Written by `portaudit schedule install`; `portaudit schedule remove` deletes it.
                    [Unit]
                    Description=portaudit snapshot every \(interval)

                    [Timer]
                    OnBootSec=1min
                    OnUnitActiveSec=\(interval)
                    AccuracySec=10s

                    [Install]
                    WantedBy=timers.target

                    """),
            ]
            let systemctl = user == nil ? ["systemctl"] : ["systemctl", "--user"]
            activate = [systemctl + ["daemon-reload"], systemctl + ["enable", "--now", "\(Self.unitName).timer"]]
            deactivate = [systemctl + ["disable", "--now", "\(Self.unitName).timer"]]
        }
    }

    /// Cron fires on clock boundaries, so only intervals that divide an hour or a day are even.
    static func cronExpression(_ seconds: Int) throws -> String {
        let refuse = Invalid(description: "cron cannot run every \(DurationText.exact(seconds)) evenly: use whole minutes dividing an hour (1m, 5m, 15m…), hours dividing a day, 1d, or --systemd")
        guard seconds % 60 == 0 else { throw refuse }
        let minutes = seconds / 60
        if minutes == 1 { return "* * * * *" }
        if minutes < 60 { guard 60 % minutes == 0 else { throw refuse }; return "*/\(minutes) * * * *" }
        if minutes == 60 { return "0 * * * *" }
        if minutes % 60 == 0 && minutes < 1440 {
            let hours = minutes / 60
            guard 24 % hours == 0 else { throw refuse }
            return "0 */\(hours) * * *"
        }
        if minutes == 1440 { return "0 0 * * *" }
        if minutes == 10080 { return "0 0 * * 0" }
        throw refuse
    }

    /// Single-quoted for a shell or a unit file when it holds anything but plain path characters.
    static func quote(_ text: String) -> String {
        if text.allSatisfy({ $0.isLetter || $0.isNumber || "/._-+:@".contains($0) }) { return text }
        return "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// Every file any kind of schedule could have written for this user (or root).
    public static func allPaths(user: (name: String, home: String)?) -> [String] {
        Kind.allCases.flatMap { kind in
            ((try? SchedulePlan(kind: kind, every: 300, binary: "x", store: "/x", user: user))?.files ?? []).map(\.path)
        }
    }

    /// A user crontab with this schedule's line replaced (or removed when `line` is nil),
    /// other lines untouched.
    public static func mergeCrontab(_ existing: String, line: String?) -> String {
        var lines = existing.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        lines.removeAll { $0.contains(marker) }
        if let line { lines.append(line.trimmingCharacters(in: .newlines)) }
        return lines.isEmpty ? "" : lines.joined(separator: "\n") + "\n"
    }
}
