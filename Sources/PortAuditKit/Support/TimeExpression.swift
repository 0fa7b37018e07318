import Foundation

/// A point in time as people type it on a command line: an ISO 8601 date or time, a
/// duration ago (30m, 12h, 7d, 2w), `now`, `today` or `yesterday`.
public enum TimeExpression {
    public struct Invalid: Error, CustomStringConvertible {
        public var description: String
    }

    static let accepted = "expected an ISO 8601 date or time (2026-11-26, 2026-11-26T10:05, 2026-11-26T10:05:00Z, 2026-11-26 10:05+01:00), a duration ago (45s, 30m, 12h, 7d, 2w), now, today or yesterday"

    /// `timeZone` reads dates and times written without an offset, and places midnight for
    /// `today` and `yesterday`: the zone times are shown in.
    public static func parse(_ text: String, now: Date = Date(), timeZone: TimeZone = .current) throws -> Date {
        let input = text.trimmingCharacters(in: .whitespaces)
        let lower = input.lowercased()
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        switch lower {
        case "now": return now
        case "today": return calendar.startOfDay(for: now)
        case "yesterday":
            return calendar.date(byAdding: .day, value: -1, to: calendar.startOfDay(for: now))!
        default: break
        }
        if let ago = duration(input) { return now.addingTimeInterval(-ago) }
        if let date = iso(input, calendar: calendar) { return date }
        if input.last == "M", duration(input.dropLast() + "m") != nil {
            throw Invalid(description: "invalid time '\(text)': M could mean months or minutes; write minutes as m (30m) and months in days (180d)")
        }
        throw Invalid(description: "invalid time '\(text)': \(accepted)")
    }

    /// Seconds of "30m", "12h", "7d", "2w", "45s"; nil when it is not a duration.
    static func duration(_ text: String) -> TimeInterval? {
        guard let unit = text.last, let count = Int(text.dropLast()), count >= 0, !text.dropLast().contains("+") else { return nil }
        guard let seconds = DurationText.unitSeconds(unit) else { return nil }
        return Double(count) * Double(seconds)
    }

    /// YYYY-MM-DD, then optionally [T or space]HH:MM[:SS[.fff]], then optionally Z or ±HH[:MM].
    static func iso(_ text: String, calendar: Calendar) -> Date? {
        let pattern = #"^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?(Z|z|[+-]\d{2}(?::?\d{2})?)?$"#
        guard let regex = try? NSRegularExpression(pattern: pattern) else { return nil }
        let range = NSRange(text.startIndex..., in: text)
        guard let match = regex.firstMatch(in: text, range: range) else { return nil }
        func group(_ i: Int) -> String? {
            guard let r = Range(match.range(at: i), in: text) else { return nil }
            return String(text[r])
        }
        // A zone with no time of day ("2026-11-26Z") is not a form anyone writes.
        if group(4) == nil && group(8) != nil { return nil }
        var calendar = calendar
        if let zone = group(8) {
            guard let offset = offsetSeconds(zone), let tz = TimeZone(secondsFromGMT: offset) else { return nil }
            calendar.timeZone = tz
        }
        var components = DateComponents()
        components.year = Int(group(1)!)
        components.month = Int(group(2)!)
        components.day = Int(group(3)!)
        components.hour = group(4).flatMap { Int($0) } ?? 0
        components.minute = group(5).flatMap { Int($0) } ?? 0
        components.second = group(6).flatMap { Int($0) } ?? 0
        guard let month = components.month, (1...12).contains(month),
              let day = components.day, day >= 1,
              let hour = components.hour, (0...23).contains(hour),
              let minute = components.minute, (0...59).contains(minute),
              let second = components.second, (0...59).contains(second),
              let date = calendar.date(from: components) else { return nil }
        // Reject days the month does not have (2026-02-30) instead of rolling over.
        guard calendar.component(.day, from: date) == day, calendar.component(.month, from: date) == month else { return nil }
        let fraction = group(7).map { Double("0." + $0) ?? 0 } ?? 0
        return date.addingTimeInterval(fraction)
    }

    static func offsetSeconds(_ zone: String) -> Int? {
        if zone == "Z" || zone == "z" { return 0 }
        let sign = zone.hasPrefix("-") ? -1 : 1
        let digits = zone.dropFirst().filter(\.isNumber)
        guard digits.count == 2 || digits.count == 4 else { return nil }
        let hours = Int(digits.prefix(2))!
        let minutes = digits.count == 4 ? Int(digits.suffix(2))! : 0
        guard hours <= 18, minutes < 60 else { return nil }
        return sign * (hours * 3600 + minutes * 60)
    }
}

/// A window of time between two optional bounds, as --since and --until give it.
public struct TimeWindow: Sendable, Equatable {
    public var since: Date?
    public var until: Date?

    public init(since: Date? = nil, until: Date? = nil) {
        self.since = since
        self.until = until
    }

    /// The bounds as the store's human views write times, so that views can be filtered
    /// by comparing text (ISO 8601 UTC with milliseconds sorts like time).
    var sinceText: String? { since.map(Timestamp.iso) }
    var untilText: String? { until.map(Timestamp.iso) }
}
