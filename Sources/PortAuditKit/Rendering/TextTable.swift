/// Plain-text columns that fit a terminal width: the columns marked `flexible` give up
/// their width first and are cut with an ellipsis.
public struct TextTable {
    public struct Column {
        public var header: String
        public var flexible: Bool
        public var alignRight: Bool
        /// How narrow a flexible column may be cut before other columns give way.
        public var minimum: Int
        public init(_ header: String, flexible: Bool = false, alignRight: Bool = false, minimum: Int = 12) {
            self.header = header
            self.flexible = flexible
            self.alignRight = alignRight
            self.minimum = minimum
        }
    }

    public var columns: [Column]
    public var rows: [[String]] = []
    /// ANSI SGR codes per cell ("31" for red), applied only when rendering with colour.
    public var styles: [[String?]] = []

    public init(_ columns: [Column]) { self.columns = columns }

    public mutating func append(_ row: [String], styles: [String?]? = nil) {
        rows.append(row)
        self.styles.append(styles ?? Array(repeating: nil, count: row.count))
    }

    /// The table as lines; `width` nil means never cut.
    public func render(width: Int?, colour: Bool = false) -> String {
        var widths = columns.indices.map { i in
            rows.reduce(columns[i].header.count) { max($0, $1[i].count) }
        }
        if let width {
            var excess = widths.reduce(0, +) + 2 * (columns.count - 1) - width
            for i in columns.indices.reversed() where columns[i].flexible && excess > 0 {
                let cut = min(excess, widths[i] - max(columns[i].header.count, columns[i].minimum))
                if cut > 0 {
                    widths[i] -= cut
                    excess -= cut
                }
            }
            // Still too wide: the widest other columns give way, down to their header, then
            // (many columns, as `sql` can give) down to 3 with the header cut too.
            for floor in [{ (i: Int) in max(columns[i].header.count, 4) }, { (_: Int) in 3 }] {
                while excess > 0 {
                    guard let i = columns.indices.filter({ widths[$0] > floor($0) })
                        .max(by: { widths[$0] < widths[$1] }) else { break }
                    widths[i] -= 1
                    excess -= 1
                }
            }
        }
        // Escape codes go around the cut, padded text so that they take no width.
        func line(_ cells: [String], _ codes: [String?]) -> String {
            var out = ""
            for (i, cell) in cells.enumerated() {
                var text = Self.cut(cell, to: widths[i])
                let pad = String(repeating: " ", count: widths[i] - text.count)
                if colour, let code = codes[i] { text = "\u{1B}[\(code)m\(text)\u{1B}[0m" }
                let last = i == cells.count - 1
                out += columns[i].alignRight ? pad + text : (last ? text : text + pad)
                if !last { out += "  " }
            }
            return out
        }
        let header = line(columns.map(\.header), columns.map { _ in colour ? "1" : nil })
        let lines = [header] + zip(rows, styles).map(line)
        guard let width, lines.contains(where: { Self.visibleCount($0) > width }) else { return lines.joined(separator: "\n") }
        // More columns than the width holds even at 3 each: cut the lines, without colour.
        return ([line(columns.map(\.header), columns.map { _ in nil })] + rows.map { line($0, $0.map { _ in nil }) })
            .map { Self.cut($0, to: width) }.joined(separator: "\n")
    }

    /// Characters a terminal shows, not counting ANSI colour codes.
    static func visibleCount(_ text: String) -> Int {
        var count = 0
        var inCode = false
        for character in text {
            if inCode {
                if character == "m" { inCode = false }
            } else if character == "\u{1B}" {
                inCode = true
            } else {
                count += 1
            }
        }
        return count
    }

    public static func cut(_ text: String, to width: Int) -> String {
        guard text.count > width else { return text }
        guard width > 1 else { return String(text.prefix(width)) }
        return String(text.prefix(width - 1)) + "…"
    }
}
