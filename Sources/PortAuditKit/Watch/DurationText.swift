import Foundation

/// Durations as people type them on a command line: 200ms, 1s, 1.5s, 5m, 1h; a bare
/// number is seconds.
public enum DurationText {
    public struct Invalid: Error, CustomStringConvertible {
        public var description: String
    }

    /// Seconds; throws for anything not positive and finite.
    public static func seconds(_ text: String) throws -> Double {
        let units: [(suffix: String, seconds: Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        var number = Substring(trimmed)
        var scale = 1.0
        for unit in units where trimmed.hasSuffix(unit.suffix) {
            number = number.dropLast(unit.suffix.count)
            scale = unit.seconds
            break
        }
        guard !number.isEmpty, number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
              let value = Double(number), value.isFinite, value > 0
        else {
            throw Invalid(description: "invalid duration '\(text)': expected a positive number with ms, s, m or h, e.g. 200ms, 1s, 5m")
        }
        return value * scale
    }
}
