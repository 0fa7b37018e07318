import Foundation

/// Durations as people type them on a command line: 30s, 5m, 2h, 180d, 2w.
public enum DurationText {
    public struct Invalid: Error, CustomStringConvertible {
        public var text: String
        public var description: String {
            text.trimmingCharacters(in: .whitespaces).hasSuffix("M")
                ? "\"\(text)\" is not a duration: M could mean months or minutes; write minutes as m (5m) and months in days (180d)"
                : "\"\(text)\" is not a duration: write a number followed by s, m, h, d or w (5m, 180d)"
        }
    }

    static let units: [(suffix: Character, seconds: Int)] = [("w", 604_800), ("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)]

    /// Seconds in the unit `letter` names, either case, except "M": to someone who meant six
    /// months, `prune --older-than 6M` read as six minutes would cut nearly all history.
    static func unitSeconds(_ letter: Character) -> Int? {
        guard letter != "M", let lower = letter.lowercased().first else { return nil }
        return units.first(where: { $0.suffix == lower })?.seconds
    }

    /// Whole seconds of "5m", "180d"; a positive number and a unit are both required.
    public static func seconds(_ text: String) throws -> Int {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let unit = trimmed.last, let seconds = unitSeconds(unit),
              let count = Int(trimmed.dropLast()), count > 0, count <= Int.max / seconds / 1000
        else { throw Invalid(text: text) }
        return count * seconds
    }

    /// Seconds of an interval that may be short or fractional: "200ms", "1.5s", "5m"; a
    /// bare number is seconds. For `watch`, where sub-second intervals make sense.
    public static func fractionalSeconds(_ text: String) throws -> Double {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        var number = Substring(trimmed)
        var scale = 1.0
        if trimmed.lowercased().hasSuffix("ms") {
            number = number.dropLast(2)
            scale = 0.001
        } else if let unit = trimmed.last, let seconds = unitSeconds(unit) {
            number = number.dropLast()
            scale = Double(seconds)
        }
        guard !number.isEmpty, number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
              let value = Double(number), value.isFinite, value > 0
        else { throw Invalid(text: text) }
        return value * scale
    }

    /// The largest unit that divides it exactly: 300 → "5m", 90 → "90s"; approximations
    /// for measured intervals go through `approximate`.
    public static func exact(_ seconds: Int) -> String {
        for unit in units where seconds % unit.seconds == 0 && seconds >= unit.seconds {
            return "\(seconds / unit.seconds)\(unit.suffix)"
        }
        return "\(seconds)s"
    }

    /// A measured span for reading: "4m 58s", "3h 10m", "2d 4h".
    public static func approximate(_ interval: TimeInterval) -> String {
        let total = Int(interval.rounded())
        if total < 60 { return "\(total)s" }
        if total < 3_600 { return "\(total / 60)m" + (total % 60 == 0 ? "" : " \(total % 60)s") }
        if total < 86_400 { return "\(total / 3_600)h" + (total % 3_600 / 60 == 0 ? "" : " \(total % 3_600 / 60)m") }
        return "\(total / 86_400)d" + (total % 86_400 / 3_600 == 0 ? "" : " \(total % 86_400 / 3_600)h")
    }
}
