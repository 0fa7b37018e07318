import Foundation

/// One value of a row. Every row-printing command produces rows of these, so that table,
/// JSON, JSON Lines and CSV are written by one piece of code with the same field names.
public enum FieldValue: Sendable, Equatable {
    case null
    case int(Int64)
    case double(Double)
    case text(String)
    case bool(Bool)
    case time(Date)
    case list([String])

    public static func integer<I: BinaryInteger>(_ value: I) -> FieldValue { FieldValue.int(Int64(truncatingIfNeeded: value)) }
    public static func optional(_ value: String?) -> FieldValue { value.map(FieldValue.text) ?? .null }
    public static func optional(_ value: Date?) -> FieldValue { value.map(FieldValue.time) ?? .null }
    public static func optional<I: BinaryInteger>(_ value: I?) -> FieldValue {
        guard let value else { return .null }
        return .integer(value)
    }

    /// The value as one CSV cell: times in ISO 8601 UTC, lists joined by ", ", null empty.
    public var plainText: String {
        switch self {
        case .null: ""
        case .int(let v): String(v)
        case .double(let v): Self.format(v)
        case .text(let v): v
        case .bool(let v): v ? "true" : "false"
        case .time(let v): Timestamp.iso(v)
        case .list(let v): v.joined(separator: ", ")
        }
    }

    static func format(_ value: Double) -> String {
        guard value.isFinite else { return "" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        var text = String(format: "%.3f", value)
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text
    }

    /// The value as JSON text.
    var json: String {
        switch self {
        case .null: "null"
        case .int(let v): String(v)
        case .double(let v): v.isFinite ? Self.format(v) : "null"
        case .text(let v): Self.jsonString(v)
        case .bool(let v): v ? "true" : "false"
        case .time(let v): Self.jsonString(Timestamp.iso(v))
        case .list(let v): "[" + v.map(Self.jsonString).joined(separator: ", ") + "]"
        }
    }

    static func jsonString(_ text: String) -> String {
        // Most text needs no escape; looking at its bytes in place first saves building it
        // again scalar by scalar, which was two thirds of `now --format jsonl`. 0xE2 starts
        // U+2028 and U+2029 (and other characters, which the slow way copies as they are).
        let plain = text.utf8.withContiguousStorageIfAvailable { bytes in
            !bytes.contains { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") || $0 == 0x7F || $0 == 0xE2 }
        }
        if plain == true { return "\"" + text + "\"" }
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case let s where s.value < 0x20 || s.value == 0x7f || s.value == 0x2028 || s.value == 0x2029:
                out += String(format: "\\u%04x", s.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

/// Rows with named fields, in a fixed field order.
public struct RecordTable: Sendable, Equatable {
    public var fields: [String]
    public var rows: [[FieldValue]]

    public init(fields: [String], rows: [[FieldValue]] = []) {
        self.fields = fields
        self.rows = rows
    }

    public mutating func append(_ row: [FieldValue]) {
        precondition(row.count == fields.count, "a row needs one value per field")
        rows.append(row)
    }

    public func value(_ row: Int, _ field: String) -> FieldValue {
        guard let index = fields.firstIndex(of: field) else { return .null }
        return rows[row][index]
    }
}

/// The machine-readable formats. Field names are snake_case and the same in every command.
public enum RecordOutput {
    /// An array of objects, each with every field in order (null when unknown).
    public static func json(_ table: RecordTable) -> String {
        if table.rows.isEmpty { return "[]" }
        let objects = table.rows.map { row in
            "  {\n" + zip(table.fields, row).map { "    \(FieldValue.jsonString($0)): \($1.json)" }.joined(separator: ",\n") + "\n  }"
        }
        return "[\n" + objects.joined(separator: ",\n") + "\n]"
    }

    /// One object per line, nothing else: each line parses alone.
    public static func jsonLines(_ table: RecordTable) -> String {
        table.rows.map { row in
            "{" + zip(table.fields, row).map { "\(FieldValue.jsonString($0)): \($1.json)" }.joined(separator: ", ") + "}"
        }.joined(separator: "\n")
    }

    /// RFC 4180: a header line, CRLF-free "\n" line ends, fields quoted when they hold a
    /// comma, a quote, a line break or surrounding spaces.
    public static func csv(_ table: RecordTable) -> String {
        ([table.fields.map(csvCell)] + table.rows.map { $0.map { csvCell($0.plainText) } })
            .map { $0.joined(separator: ",") }.joined(separator: "\n")
    }

    static func csvCell(_ text: String) -> String {
        let needsQuotes = text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
            || text.first == " " || text.last == " "
        return needsQuotes ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
    }
}

/// How one field is shown in a terminal table.
public struct TableColumn: Sendable {
    public var field: String
    public var header: String
    public var flexible: Bool
    public var alignRight: Bool
    /// How narrow a flexible column may be cut before other columns give way.
    public var minimum: Int
    /// An ANSI colour for a value, used only when colour is on.
    public var colour: (@Sendable (FieldValue) -> TerminalColour?)?
    /// The text of a cell made from several fields of the row; nil shows `field` alone.
    public var compose: (@Sendable (_ field: (String) -> FieldValue, _ style: TextStyle) -> String)?

    public init(_ field: String, _ header: String? = nil, flexible: Bool = false, alignRight: Bool = false, minimum: Int = 12,
                compose: (@Sendable (_ field: (String) -> FieldValue, _ style: TextStyle) -> String)? = nil,
                colour: (@Sendable (FieldValue) -> TerminalColour?)? = nil) {
        self.field = field
        self.header = header ?? field.uppercased().replacingOccurrences(of: "_", with: " ")
        self.flexible = flexible
        self.alignRight = alignRight
        self.minimum = minimum
        self.colour = colour
        self.compose = compose
    }

    /// "tcp 127.0.0.1:22", "udp [::1]%eth0:53": the listener in one cell.
    public static let endpoint = TableColumn("address", "LISTENER") { field, _ in
        let port = field("port").plainText
        let text = Endpoint.text(address: field("address").plainText, port: UInt16(port) ?? 0,
                                 interface: field("interface").plainText)
        return "\(field("protocol").plainText) \(text)"
    }

    /// The endpoint, followed by "in netns X" when it is not the host's namespace, so a
    /// container's port and the host's same port are told apart.
    public static let namespacedEndpoint = TableColumn("address", "LISTENER") { field, style in
        let endpoint = TableColumn.endpoint.compose?(field, style) ?? ""
        guard field("netns_is_host") == .bool(false) else { return endpoint }
        let name = field("netns_name")
        return endpoint + " in netns " + (name == .null ? field("netns").plainText : name.plainText)
    }

    /// "11-26 10:00:00–10:05:00": when something happened, between two snapshots, in one
    /// cell; "by 11-26 10:05:00" when there was no snapshot before.
    public static func between(_ after: String, _ by: String, _ header: String) -> TableColumn {
        TableColumn(by, header) { value, style in
            guard case .time(let end) = value(by) else { return "-" }
            let wide = style.width == nil
            let endText = wide ? style.time(end) : style.shortTime(end)
            guard case .time(let start) = value(after) else { return "by " + endText }
            let startText = wide ? style.time(start) : style.shortTime(start)
            let sameDay = startText.prefix(while: { $0 != " " }) == endText.prefix(while: { $0 != " " })
            return startText + (wide ? " – " : "–") + (sameDay ? String(endText.drop(while: { $0 != " " }).dropFirst()) : endText)
        }
    }

    /// A time in the short form a narrow table has room for, whole with --wide; "now" when
    /// `flag` is true and the row's host has a current snapshot.
    public static func time(_ field: String, _ header: String, orNowWhen flag: String? = nil) -> TableColumn {
        TableColumn(field, header) { value, style in
            if let flag, value(flag) == .bool(true), !style.staleHosts.contains(value(FieldName.hostname).plainText) { return "now" }
            guard case .time(let date) = value(field) else { return "-" }
            return style.width == nil ? style.time(date) : style.shortTime(date)
        }
    }
}

public enum TerminalColour: String, Sendable {
    case red = "31", green = "32", yellow = "33", blue = "34", magenta = "35", cyan = "36", dim = "2", bold = "1"
}

extension RecordTable {
    /// The rows as a terminal table of `columns`, times in the zone of `style`.
    public func renderTable(_ columns: [TableColumn], style: TextStyle, colour: Bool = false) -> String {
        var style = style
        let thisYear = Timestamp.year(containing: Date(), utc: style.utc)
        let shown = Set(columns.compactMap { fields.firstIndex(of: $0.field) })
        style.shortTimesOmitYear = rows.allSatisfy { row in
            shown.allSatisfy { index in
                guard case .time(let date) = row[index] else { return true }
                return thisYear.contains(date)
            }
        }
        var table = TextTable(columns.map {
            TextTable.Column($0.header, flexible: $0.flexible, alignRight: $0.alignRight, minimum: $0.minimum)
        })
        let indices = columns.map { fields.firstIndex(of: $0.field) }
        for row in rows {
            var cells: [String] = []
            var styles: [String?] = []
            let lookup = { (name: String) -> FieldValue in
                self.fields.firstIndex(of: name).map { row[$0] } ?? .null
            }
            for (column, index) in zip(columns, indices) {
                let value = index.map { row[$0] } ?? .null
                cells.append(column.compose?(lookup, style) ?? style.text(value))
                styles.append(colour ? column.colour?(value)?.rawValue : nil)
            }
            table.append(cells, styles: styles)
        }
        return table.render(width: style.width, colour: colour)
    }
}

extension TextStyle {
    /// Where columns are scarce: 11-26 10:05:00 in the current year; 2025-11-26 10:05 before it, which a table of a
    /// long history would otherwise show without its year.
    public func shortTime(_ date: Date) -> String {
        let full = time(date)
        let omitYear = shortTimesOmitYear ?? Timestamp.year(containing: Date(), utc: utc).contains(date)
        return String(omitYear ? full.dropFirst(5) : full.dropLast(3))
    }

    /// A value as a person reads it in a table.
    public func text(_ value: FieldValue) -> String {
        switch value {
        case .null: "-"
        case .time(let date): time(date)
        case .bool(let b): b ? "yes" : "no"
        default: value.plainText
        }
    }
}
