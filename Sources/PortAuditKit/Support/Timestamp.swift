import Foundation

/// How times are written: the store keeps milliseconds since the epoch; people read ISO 8601.
public enum Timestamp {
    public static func milliseconds(_ date: Date) -> Int64 {
        Int64((date.timeIntervalSince1970 * 1000).rounded())
    }

    public static func date(milliseconds: Int64) -> Date {
        Date(timeIntervalSince1970: Double(milliseconds) / 1000)
    }

    /// 2026-11-26T10:05:00.123Z. The milliseconds are printed from the rounded integer:
    /// formatting the Double directly truncates, and can print .787 for a stored .788.
    public static func iso(_ date: Date) -> String {
        let ms = milliseconds(date)
        let seconds = ms >= 0 ? ms / 1000 : (ms - 999) / 1000
        let whole = Date(timeIntervalSince1970: Double(seconds)).formatted(Date.ISO8601FormatStyle())
        return String(whole.dropLast()) + String(format: ".%03dZ", Int(ms - seconds * 1000))
    }

    /// Reads what `iso` writes (and the store's views), to the millisecond; nil otherwise.
    public static func parseISO(_ text: String?) -> Date? {
        guard let text, text.hasSuffix("Z"), let dot = text.lastIndex(of: "."),
              let fraction = Int(text[text.index(after: dot)..<text.index(before: text.endIndex)]),
              text.distance(from: dot, to: text.endIndex) == 5,
              let whole = try? Date.ISO8601FormatStyle().parse(String(text[..<dot]) + "Z") else { return nil }
        return date(milliseconds: milliseconds(whole) + Int64(fraction))
    }

    /// 2026-11-26 10:05:00, in UTC or in the local time zone.
    public static func human(_ date: Date, utc: Bool) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = utc ? TimeZone(identifier: "UTC")! : TimeZone.current
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        return String(format: "%04d-%02d-%02d %02d:%02d:%02d", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
    }
}
