/// Plain-text columns that fit a terminal width: the columns marked `flexible` give up
/// their width first and are cut with an ellipsis.
public struct TextTable {
    public struct Column {
        public var header: String
        public var flexible: Bool
        public var alignRight: Bool
        public init(_ header: String, flexible: Bool = false, alignRight: Bool = false) {
            self.header = header
            self.flexible = flexible
            self.alignRight = alignRight
        }
    }

    public var columns: [Column]
    public var rows: [[String]] = []

    public init(_ columns: [Column]) { self.columns = columns }

    public mutating func append(_ row: [String]) { rows.append(row) }

    /// The table as lines; `width` nil means never cut.
    public func render(width: Int?) -> String {
        var widths = columns.indices.map { i in
            rows.reduce(columns[i].header.count) { max($0, $1[i].count) }
        }
        if let width {
            var excess = widths.reduce(0, +) + 2 * (columns.count - 1) - width
            for i in columns.indices.reversed() where columns[i].flexible && excess > 0 {
                let cut = min(excess, widths[i] - max(columns[i].header.count, 12))
                if cut > 0 {
                    widths[i] -= cut
                    excess -= cut
                }
            }
        }
        func line(_ cells: [String]) -> String {
            var out = ""
            for (i, cell) in cells.enumerated() {
                let text = Self.cut(cell, to: widths[i])
                let pad = String(repeating: " ", count: widths[i] - text.count)
                let last = i == cells.count - 1
                out += columns[i].alignRight ? pad + text : (last ? text : text + pad)
                if !last { out += "  " }
            }
            return out
        }
        return ([line(columns.map(\.header))] + rows.map(line)).joined(separator: "\n")
    }

    public static func cut(_ text: String, to width: Int) -> String {
        guard text.count > width else { return text }
        guard width > 1 else { return String(text.prefix(width)) }
        return String(text.prefix(width - 1)) + "…"
    }
}
