import Foundation

public enum StatusText {
    public static func status(_ status: StoreStatus, style: TextStyle) -> String {
        var lines: [String] = []
        lines.append("Store:          \(status.path)")
        lines.append("Size:           \(bytes(status.bytes))")
        lines.append("Schema:         \(status.schemaVersion ?? "none") (\(status.migrations) migrations)")
        lines.append("Snapshots:      \(status.snapshots)")
        let policy = ["full": "stored in full", "redact": "stored with secrets masked", "none": "not stored"][status.commandLines] ?? status.commandLines
        lines.append("Command lines:  \(policy)")
        if let integrity = status.integrity { lines.append("Integrity:      \(integrity)") }
        for host in status.hosts {
            lines.append("")
            lines.append("Host \(host.hostname.isEmpty ? "(no name)" : host.hostname): \(host.snapshots) snapshots")
            if let first = host.firstSnapshot, let last = host.lastSnapshot {
                lines.append("  first          \(style.time(first))")
                lines.append("  last           \(style.time(last))")
            }
            lines.append("  usual interval \(host.usualInterval.map(DurationText.approximate) ?? "unknown (not enough snapshots)")")
            if let cut = host.prunedBefore {
                lines.append("  pruned before  \(style.time(cut))")
            }
            if host.gaps.isEmpty {
                lines.append("  gaps           none")
            } else {
                lines.append("  gaps           \(host.gaps.count) (no snapshot for more than \(Int(Coverage.gapFactor)) usual intervals; unknown, not absent)")
                for gap in host.gaps {
                    lines.append("    \(style.time(gap.from)) to \(style.time(gap.to))  (\(DurationText.approximate(gap.duration)))")
                }
            }
        }
        return lines.joined(separator: "\n")
    }

    static func bytes(_ count: Int64) -> String {
        if count < 1024 { return "\(count) bytes" }
        if count < 1 << 20 { return String(format: "%.1f KiB", Double(count) / 1024) }
        if count < 1 << 30 { return String(format: "%.1f MiB", Double(count) / 1_048_576) }
        return String(format: "%.2f GiB", Double(count) / 1_073_741_824)
    }
}
