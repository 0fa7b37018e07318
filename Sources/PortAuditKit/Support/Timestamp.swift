import Foundation

/// How times are written: the store keeps milliseconds since the epoch; people read ISO 8601.
public enum Timestamp {
    public static func milliseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1000).rounded())
    }

    public static func date(milliseconds: Int64) -> Date {
        Date(timeIntervalSince1970: Double(milliseconds) / 1000)
    }

    /// 2026-11-26T10:05:00.123Z, from the rounded milliseconds. Computed with integer
    /// calendar arithmetic: formatting the Double truncates (it can print .787 for a stored
    /// .788), and Foundation's ISO 8601 style costs about a millisecond a call on Linux,
    /// which thousands of rows feel.
    public static func iso(_ date: Date) -> String {
        let ms = milliseconds(date)
        let days = floorDivide(ms, 86_400_000)
        let inDay = ms - days * 86_400_000
        let (year, month, day) = civil(fromDays: days)
        let seconds = inDay / 1000
        var text = dateAndTime((year, month, day, seconds / 3600, seconds / 60 % 60, seconds % 60), separator: "T")
        text.append(inDay % 1000, width: 3, after: ".")
        text.append("Z")
        return text.string
    }

    /// Reads what `iso` writes (and the store's views write), to the millisecond; nil otherwise.
    public static func parseISO(_ text: String?) -> Date? {
        guard let text else { return nil }
        let b = Array(text.utf8)
        guard b.count == 24, b[4] == UInt8(ascii: "-"), b[7] == UInt8(ascii: "-"), b[10] == UInt8(ascii: "T"),
              b[13] == UInt8(ascii: ":"), b[16] == UInt8(ascii: ":"), b[19] == UInt8(ascii: "."), b[23] == UInt8(ascii: "Z")
        else { return nil }
        func number(_ range: Range<Int>) -> Int64? {
            var value: Int64 = 0
            for i in range {
                guard b[i] >= 48 && b[i] <= 57 else { return nil }
                value = value * 10 + Int64(b[i] - 48)
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
              let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19),
              let fraction = number(20..<23), (1...12).contains(month), (1...31).contains(day),
              hour < 24, minute < 60, second < 60 else { return nil }
        let days = self.days(fromCivil: year, month, day)
        return date(milliseconds: ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + fraction)
    }

    private static func floorDivide(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : (a - b + 1) / b }

    /// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
    static func days(fromCivil year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = floorDivide(y, 400)
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civil(fromDays days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = floorDivide(z, 146_097)
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// 2026-11-26 10:05:00, in UTC or in the local time zone.
    public static func human(_ date: Date, utc: Bool, milliseconds showMilliseconds: Bool = false) -> String {
        var text = dateAndTime(fields(date, utc: utc), separator: " ")
        if showMilliseconds {
            text.append(milliseconds(date) - floorDivide(milliseconds(date), 1000) * 1000, width: 3, after: ".")
        }
        return text.string
    }

    /// The calendar fields of `date` in UTC or in local time (the C library's zone rules: TZ,
    /// /etc/localtime), which costs a fraction of Calendar's on Linux, where a table of
    /// hundreds of rows formats thousands of times.
    static func fields(_ date: Date, utc: Bool) -> (year: Int64, month: Int64, day: Int64, hour: Int64, minute: Int64, second: Int64) {
        var seconds = time_t(floorDivide(milliseconds(date), 1000))
        var t = tm()
        if utc { gmtime_r(&seconds, &t) } else { localtime_r(&seconds, &t) }
        return (Int64(t.tm_year) + 1900, Int64(t.tm_mon) + 1, Int64(t.tm_mday), Int64(t.tm_hour), Int64(t.tm_min), Int64(t.tm_sec))
    }

    /// The calendar year `date` falls in, in UTC or local time: a table compares each of its
    /// times with these bounds instead of breaking every time into fields a second time.
    static func year(containing date: Date, utc: Bool) -> Range<Date> {
        func start(_ year: Int64) -> Date {
            var t = tm()
            t.tm_year = Int32(year - 1900)
            t.tm_mday = 1
            t.tm_isdst = -1
            return Date(timeIntervalSince1970: TimeInterval(utc ? timegm(&t) : mktime(&t)))
        }
        let year = fields(date, utc: utc).year
        return start(year)..<start(year + 1)
    }

    /// 2026-11-26, `separator`, 10:05:00.
    private static func dateAndTime(_ c: (year: Int64, month: Int64, day: Int64, hour: Int64, minute: Int64, second: Int64),
                                    separator: Unicode.Scalar) -> FixedWidthText {
        var text = FixedWidthText()
        text.append(c.year, width: 4)
        text.append(c.month, width: 2, after: "-")
        text.append(c.day, width: 2, after: "-")
        text.append(c.hour, width: 2, after: separator)
        text.append(c.minute, width: 2, after: ":")
        text.append(c.second, width: 2, after: ":")
        return text
    }
}

/// Zero-padded decimal fields and separators written into one buffer. Joining a String per
/// field by interpolation cost about 7,000 instructions a time (callgrind), and a table of a
/// year's history writes thousands of times.
struct FixedWidthText {
    private var bytes: [UInt8] = []

    init() { bytes.reserveCapacity(24) }

    /// `value` in decimal, zero-padded to `width` digits, after `separator` if given.
    mutating func append(_ value: Int64, width: Int, after separator: Unicode.Scalar? = nil) {
        if let separator { append(separator) }
        if value < 0 { append("-") }
        let magnitude = value.magnitude
        var place: UInt64 = 1
        var digits = 1
        while digits < width - (value < 0 ? 1 : 0) || magnitude / place >= 10 {
            place *= 10
            digits += 1
        }
        while place > 0 {
            bytes.append(UInt8(ascii: "0") + UInt8(magnitude / place % 10))
            place /= 10
        }
    }

    mutating func append(_ scalar: Unicode.Scalar) {
        bytes.append(UInt8(ascii: scalar))
    }

    var string: String { String(decoding: bytes, as: UTF8.self) }
}
