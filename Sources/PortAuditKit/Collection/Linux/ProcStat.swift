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
        self.init(bytes: Array(text.utf8))
    }

    /// Parsed from the bytes as read: a snapshot reads one stat per holder process, and
    /// String splitting and trimming cost more than the read itself.
    init?<Bytes: RandomAccessCollection>(bytes: Bytes) where Bytes.Element == UInt8, Bytes.Index == Int {
        guard let open = bytes.firstIndex(of: UInt8(ascii: "(")),
              let close = bytes.lastIndex(of: UInt8(ascii: ")")), open < close
        else { return nil }
        // The pid: digits before '(', spaces around them allowed.
        var pid: Int64 = 0, pidDigits = 0
        for byte in bytes[bytes.startIndex..<open] where byte != UInt8(ascii: " ") {
            guard byte >= 48 && byte <= 57, pidDigits < 10 else { return nil }
            pid = pid * 10 + Int64(byte - 48)
            pidDigits += 1
        }
        guard pidDigits > 0, pid <= Int64(Int32.max) else { return nil }
        // Fields after ')', space-separated: [0] state (field 3), [1] ppid (4), [19] starttime (22).
        var field = -1, inField = false
        var value: UInt64 = 0, digits = 0, valid = true
        var ppid: Int32?, start: UInt64?
        func finish() {
            if field == 1 { ppid = valid && digits > 0 && value <= UInt64(Int32.max) ? Int32(value) : nil }
            if field == 19 { start = valid && digits > 0 ? value : nil }
        }
        var index = close + 1
        while index < bytes.endIndex && field <= 19 {
            let byte = bytes[index]
            if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\n") {
                if inField { finish(); inField = false }
            } else {
                if !inField { field += 1; inField = true; value = 0; digits = 0; valid = true }
                if byte >= 48 && byte <= 57 && digits < 19 {
                    value = value * 10 + UInt64(byte - 48)
                    digits += 1
                } else {
                    valid = false
                }
            }
            index += 1
        }
        if inField { finish() }
        guard let ppid, let start else { return nil }
        self.pid = Int32(pid)
        self.name = String(decoding: bytes[(open + 1)..<close], as: UTF8.self)
        self.ppid = ppid
        self.startTicks = start
    }
}
