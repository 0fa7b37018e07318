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
        // Counting characters walks the text: each cell is counted once.
        let counts = rows.map { $0.map(\.count) }
        var widths = columns.indices.map { i in
            counts.reduce(columns[i].header.count) { max($0, $1[i]) }
        }
        // How much wider than `width` the widest line is: every cell but the last is padded to
        // its column, and some line holds the widest cell of the last one.
        var excess = width.map { widths.reduce(0, +) + 2 * (columns.count - 1) - $0 } ?? 0
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
        // Escape codes go around the cut, padded text so that they take no width.
        func line(_ cells: [String], _ counts: [Int], _ codes: [String?]) -> String {
            var out = ""
            for (i, cell) in cells.enumerated() {
                var text = counts[i] > widths[i] ? Self.cut(cell, counted: counts[i], to: widths[i]) : cell
                let pad = String(repeating: " ", count: widths[i] - min(counts[i], widths[i]))
                if colour, let code = codes[i] { text = "\u{1B}[\(code)m\(text)\u{1B}[0m" }
                let last = i == cells.count - 1
                out += columns[i].alignRight ? pad + text : (last ? text : text + pad)
                if !last { out += "  " }
            }
            return out
        }
        let headers = columns.map(\.header)
        let headerCounts = headers.map(\.count)
        let header = line(headers, headerCounts, columns.map { _ in colour ? "1" : nil })
        let lines = [header] + rows.indices.map { line(rows[$0], counts[$0], styles[$0]) }
        guard let width, excess > 0 else { return lines.joined(separator: "\n") }
        // More columns than the width holds even at 3 each: cut the lines, without colour.
        let plain = [line(headers, headerCounts, headers.map { _ in nil })] + rows.indices.map { line(rows[$0], counts[$0], rows[$0].map { _ in nil }) }
        return plain.map { Self.cut($0, to: width) }.joined(separator: "\n")
    }

    public static func cut(_ text: String, to width: Int) -> String {
        cut(text, counted: text.count, to: width)
    }

    /// `cut` for a text whose characters are already counted: counting walks the whole text.
    private static func cut(_ text: String, counted count: Int, to width: Int) -> String {
        guard count > width else { return text }
        guard width > 1 else { return String(text.prefix(width)) }
        return String(text.prefix(width - 1)) + "…"
    }
}
