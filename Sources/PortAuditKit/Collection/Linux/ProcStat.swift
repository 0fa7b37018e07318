import Foundation

/// The fields portaudit needs from /proc/<pid>/stat.
///
/// The name (comm) sits in parentheses and may itself hold spaces and parentheses, so
/// the fields after it are counted from the last ')'.
struct ProcStat: Equatable {
    var pid: Int32
    var name: String
    var ppid: Int32
    /// Clock ticks after boot.
    var startTicks: UInt64

    init(pid: Int32, name: String, ppid: Int32, startTicks: UInt64) {
        self.pid = pid
        self.name = name
        self.ppid = ppid
        self.startTicks = startTicks
    }

    init?(_ text: String) {
        guard let open = text.firstIndex(of: "("), let close = text.lastIndex(of: ")"), open < close,
              let pid = Int32(text[..<open].trimmingCharacters(in: .whitespaces))
        else { return nil }
        let rest = text[text.index(after: close)...].split(separator: " ")
        // rest[0] is field 3 (state); ppid is field 4, starttime field 22.
        guard rest.count >= 20, let ppid = Int32(rest[1]), let start = UInt64(rest[19]) else { return nil }
        self.pid = pid
        self.name = String(text[text.index(after: open)..<close])
        self.ppid = ppid
        self.startTicks = start
    }
}
