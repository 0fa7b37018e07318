import Foundation
import Testing
@testable import PortAuditKit

/// Times, ports and formats as people type and read them.
@Suite struct InputAndFormatTests {
    let utc = TimeZone(identifier: "UTC")!
    let now = Timestamp.parseISO("2026-11-26T15:30:00.000Z")!

    func iso(_ text: String, zone: TimeZone? = nil) throws -> String {
        Timestamp.iso(try TimeExpression.parse(text, now: now, timeZone: zone ?? utc))
    }

    /// The binary carries the system's SQLite where the system has its archive (Package.swift),
    /// and says which SQLite in --version.
    @Test func binaryCarriesSQLiteWhereTheSystemHasItsArchive() throws {
        let archive = ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib"]
            .contains { FileManager.default.fileExists(atPath: $0 + "/libsqlite3.a") }
        // The loader lists the shared libraries it would load, and exits (what ldd does).
        let loaded = try run(portauditBinary, [], environment: ["LD_TRACE_LOADED_OBJECTS": "1"])
        #expect(loaded.status == 0 && loaded.stdout.contains("libc.so"), "\(loaded.stdout)")
        #expect(loaded.stdout.contains("libsqlite3") == !archive, "\(loaded.stdout)")
        let version = try portaudit("--version")
        #expect(version.stdout.hasPrefix("0.1.0, SQLite 3."), "\(version.stdout)")
    }

    @Test func timesAsTablesWriteThem() throws {
        let date = try #require(Timestamp.parseISO("1999-03-04T05:06:07.089Z"))
        #expect(Timestamp.iso(date) == "1999-03-04T05:06:07.089Z")
        #expect(Timestamp.iso(try #require(Timestamp.parseISO("0999-12-31T23:59:59.999Z"))) == "0999-12-31T23:59:59.999Z")
        #expect(Timestamp.human(date, utc: true) == "1999-03-04 05:06:07")
        #expect(Timestamp.human(date, utc: true, milliseconds: true) == "1999-03-04 05:06:07.089")
        // Fields are padded to their width, never cut to it.
        #expect(Timestamp.iso(Timestamp.date(milliseconds: 253_402_300_800_000)) == "10000-01-01T00:00:00.000Z")
        #expect(Timestamp.iso(Timestamp.date(milliseconds: 0)) == "1970-01-01T00:00:00.000Z")
        let style = TextStyle(width: 80, utc: true)
        // The year is left out only when it is this year's.
        #expect(style.shortTime(date) == "1999-03-04 05:06")
        let thisYear = Timestamp.fields(Date(), utc: true).year
        let recent = try #require(Timestamp.parseISO("\(thisYear)-01-01T00:00:01.000Z"))
        #expect(style.shortTime(recent) == "01-01 00:00:01")
        // Bounds within one second show their milliseconds, others whole seconds.
        let close = (Timestamp.date(milliseconds: 921_643_567_100), Timestamp.date(milliseconds: 921_643_567_900))
        #expect(style.times(close.0, close.1) == ("1999-03-17 04:06:07.100", "1999-03-17 04:06:07.900"))
        #expect(style.times(close.0, close.1.addingTimeInterval(1)) == ("1999-03-17 04:06:07", "1999-03-17 04:06:08"))
        // A table shows every time in one form: with the year as soon as one time needs it.
        var table = RecordTable(fields: ["first_seen", "last_seen"])
        table.append([.time(recent), .time(recent)])
        let columns = [TableColumn.time("first_seen", "FIRST SEEN"), TableColumn.time("last_seen", "LAST SEEN")]
        #expect(table.renderTable(columns, style: style).contains("01-01 00:00:01  01-01 00:00:01"))
        table.append([.time(date), .time(recent)])
        let mixed = table.renderTable(columns, style: style)
        #expect(mixed.split(separator: "\n").dropFirst().map { $0.trimmingCharacters(in: .whitespaces) }
                == ["\(thisYear)-01-01 00:00  \(thisYear)-01-01 00:00", "1999-03-04 05:06  \(thisYear)-01-01 00:00"], "\(mixed)")
        #expect(FieldValue.format(2.5) == "2.5")
        #expect(FieldValue.format(0.125) == "0.125")
        #expect(FieldValue.format(3.100) == "3.1")
        #expect(FieldValue.format(7) == "7")
    }

    @Test func tablesFitTheWidthWithAndWithoutColour() {
        /// What a terminal shows of a line: ANSI colour codes take no width.
        func visible(_ line: Substring) -> Int {
            line.replacing(/\u{1B}\[[0-9;]*m/, with: "").count
        }
        var table = TextTable([.init("PORT", alignRight: true), .init("NAME"), .init("COMMAND", flexible: true, minimum: 8)])
        table.append(["22", "sshd", "/usr/sbin/sshd -D -o AuthorizedKeysCommand=/usr/bin/true"], styles: ["31", nil, nil])
        table.append(["8080", "python3", "python3 -m http.server"])
        for colour in [false, true] {
            let lines = table.render(width: 30, colour: colour).split(separator: "\n")
            #expect(lines.count == 3)
            #expect(lines.allSatisfy { visible($0) <= 30 }, "\(lines)")
            #expect(lines.map(visible).max() == 30, "the cut column takes the room left")
            #expect(lines[1].hasSuffix("…") && lines[1].contains("sshd"))
            #expect(lines[1].contains("\u{1B}[31m") == colour)
        }
        #expect(table.render(width: nil).split(separator: "\n")[1].hasSuffix("AuthorizedKeysCommand=/usr/bin/true"))
        // A right-aligned last column, and a header wider than every cell: still exactly as wide.
        var counts = TextTable([.init("NAME", flexible: true, minimum: 4), .init("CONNECTIONS", alignRight: true)])
        counts.append(["a-rather-long-process-name-that-must-be-cut", "7"])
        counts.append(["sshd", "12"])
        let fitted = counts.render(width: 24).split(separator: "\n")
        #expect(fitted.map(visible) == [24, 24, 24], "\(fitted)")
        #expect(fitted[2].hasPrefix("sshd ") && fitted[2].hasSuffix(" 12"))
        #expect(counts.render(width: 80).split(separator: "\n").map(visible).max() == 56)
        #expect(" \tmachine-id \n".trimmingWhitespace() == "machine-id")
        #expect(" \n ".trimmingWhitespace() == "")
        // More columns than the width holds even at 3 each: plain lines, cut.
        var wide = TextTable((1...10).map { TextTable.Column("C\($0)") })
        wide.append((1...10).map { "value\($0)" })
        let cut = wide.render(width: 20, colour: true).split(separator: "\n")
        #expect(cut.allSatisfy { $0.count <= 20 && !$0.contains("\u{1B}") }, "\(cut)")
    }

    @Test func timesInEveryForm() throws {
        #expect(try iso("2026-11-20") == "2026-11-20T00:00:00.000Z")
        #expect(try iso("2026-11-20T10:05") == "2026-11-20T10:05:00.000Z")
        #expect(try iso("2026-11-20 10:05:30") == "2026-11-20T10:05:30.000Z")
        #expect(try iso("2026-11-20T10:05:30.250Z") == "2026-11-20T10:05:30.250Z")
        #expect(try iso("2026-11-20T10:05:30+01:00") == "2026-11-20T09:05:30.000Z")
        #expect(try iso("2026-11-20T10:05-0230") == "2026-11-20T12:35:00.000Z")
        #expect(try iso("30m") == "2026-11-26T15:00:00.000Z")
        #expect(try iso("12h") == "2026-11-26T03:30:00.000Z")
        #expect(try iso("7d") == "2026-11-19T15:30:00.000Z")
        #expect(try iso("2w") == "2026-11-12T15:30:00.000Z")
        #expect(try iso("12H") == "2026-11-26T03:30:00.000Z")
        let months = #expect(throws: TimeExpression.Invalid.self) { try iso("5M") }
        #expect(months?.description.contains("months or minutes") == true)
        #expect(try iso("45s") == "2026-11-26T15:29:15.000Z")
        #expect(try iso("today") == "2026-11-26T00:00:00.000Z")
        #expect(try iso("Yesterday") == "2026-11-25T00:00:00.000Z")
        #expect(try iso("now") == "2026-11-26T15:30:00.000Z")
        // A time without an offset is read in the zone times are shown in.
        let paris = TimeZone(identifier: "Europe/Paris")!
        #expect(try iso("2026-11-20T10:05", zone: paris) == "2026-11-20T09:05:00.000Z")
        #expect(try iso("today", zone: paris) == "2026-11-25T23:00:00.000Z")
    }

    @Test(arguments: ["", "2026-13-01", "2026-02-30", "2026-11-26T24:00", "2026-11-26T10:61", "26-11-2026",
                      "7y", "-5m", "+5m", "m", "yesterdayy", "2026-11-26Z", "2026-11-26T10:00+25:00", "10:00", "5M"])
    func badTimesAreRefused(text: String) {
        #expect(throws: TimeExpression.Invalid.self) { try TimeExpression.parse(text, now: now, timeZone: utc) }
    }

    @Test func portsRangesAndServices() throws {
        #expect(try PortSpec(parsing: "8000-8100") == PortSpec(ports: 8000...8100))
        #expect(try PortSpec(parsing: "8000-8100/udp") == PortSpec(ports: 8000...8100, proto: .udp))
        #expect(try PortSpec(parsing: "22").isRange == false)
        #expect(try PortSpec(parsing: "ssh/tcp") == PortSpec(port: 22, proto: .tcp))
        #expect(try PortSpec(parsing: "ewall") == PortSpec(port: 1328))
        #expect(try PortSpec(parsing: "80-80") == PortSpec(port: 80))
        for bad in ["8100-8000", "0-10", "1-65536", "8000-", "-8000", "8000-8100/sctp", "no-such-service-x", "80--90"] {
            #expect(throws: PortSpec.Invalid.self, "\(bad)") { try PortSpec(parsing: bad) }
        }
        let range = try PortSpec(parsing: "8000-8100/tcp")
        #expect(range.matches(port: 8050, proto: .tcp))
        #expect(!range.matches(port: 8050, proto: .udp))
        #expect(!range.matches(port: 8101, proto: .tcp))
    }

    @Test func csvQuotesWhatNeedsItAndReadsBack() throws {
        var table = RecordTable(fields: ["text", "number", "flag", "when", "list", "missing"])
        let when = Timestamp.parseISO("2026-11-26T10:05:00.123Z")!
        table.append([.text("a, \"quoted\"\nline"), .int(42), .bool(true), .time(when), .list(["x[1]", "y[2]"]), .null])
        table.append([.text(" padded "), .double(1.5), .bool(false), .null, .list([]), .null])
        let parsed = try CSVReader.parse(RecordOutput.csv(table))
        #expect(parsed == [
            ["text", "number", "flag", "when", "list", "missing"],
            ["a, \"quoted\"\nline", "42", "true", "2026-11-26T10:05:00.123Z", "x[1], y[2]", ""],
            [" padded ", "1.5", "false", "", "", ""],
        ])
        let json = try #require(try parseJSON(RecordOutput.json(table)) as? [[String: Any]])
        #expect(json[0]["text"] as? String == "a, \"quoted\"\nline")
        #expect(json[0]["when"] as? String == "2026-11-26T10:05:00.123Z")
        #expect(json[0]["missing"] is NSNull)
        #expect(json[1]["number"] as? Double == 1.5)
        let lines = RecordOutput.jsonLines(table).split(separator: "\n")
        #expect(lines.count == 2)
        for line in lines { #expect((try? parseJSON(String(line))) is [String: Any]) }
    }

    /// JSON Lines stay one line each and safe to paste into JavaScript: U+2028 and U+2029 are
    /// escaped like control characters, whether or not the text needs anything else.
    @Test func jsonStringsEscapeOnlyWhatTheyMust() {
        #expect(FieldValue.jsonString("nginx: master process /usr/sbin/nginx") == "\"nginx: master process /usr/sbin/nginx\"")
        #expect(FieldValue.jsonString("a\"b\\c\n\t\u{1}\u{7F}") == "\"a\\\"b\\\\c\\n\\t\\u0001\\u007f\"")
        #expect(FieldValue.jsonString("\u{2028}") == "\"\\u2028\"")
        #expect(FieldValue.jsonString("… — é \u{2029}") == "\"… — é \\u2029\"")
        #expect(FieldValue.jsonString("") == "\"\"")
    }

    @Test func tablesFitAndCutWithAnEllipsis() {
        var table = RecordTable(fields: ["port", "cmdline"])
        table.append([.int(22), .text(String(repeating: "very-long-argument ", count: 10))])
        let narrow = table.renderTable([TableColumn("port"), TableColumn("cmdline", flexible: true)], style: TextStyle(width: 80, utc: true))
        #expect(narrow.split(separator: "\n").allSatisfy { $0.count <= 80 })
        #expect(narrow.contains("…"))
        let wide = table.renderTable([TableColumn("port"), TableColumn("cmdline", flexible: true)], style: TextStyle(width: nil, utc: true))
        #expect(wide.contains(String(repeating: "very-long-argument ", count: 10).trimmingCharacters(in: .whitespaces)))
        let coloured = table.renderTable([TableColumn("port", colour: { _ in .red }), TableColumn("cmdline", flexible: true)],
                                         style: TextStyle(width: 80, utc: true), colour: true)
        #expect(coloured.contains("\u{1B}[31m22\u{1B}[0m"))
    }

    @Test(arguments: [
        (["changes", "--since", "2026-13-01"], "invalid time"),
        (["changes", "--since", "yesterdayy"], "invalid time"),
        (["changes", "--until", "5x"], "--until"),
        (["changes", "--since", "today", "--until", "yesterday"], "after --until"),
        (["ports", "--since", "10:00"], "invalid time"),
        (["usage", "--since", "2026-02-30"], "invalid time"),
        (["usage", "--port", "0"], "1 to 65535"),
        (["usage", "--port", "9000-8000"], "first port"),
        (["changes", "--port", "70000-70010"], "1 to 65535"),
        (["ports", "--port", "no-such-service-x"], "service name"),
        (["ports", "--port", "22/sctp"], "tcp or udp"),
        (["history", "8000-8100"], "range"),
        (["usage", "--by", "month"], "month"),
        (["changes", "--format", "yaml"], "yaml"),
        (["ports", "--format", "xml"], "xml"),
        (["sql", "SELECT 1", "--format", "tsv"], "tsv"),
        (["process", ""], "invalid process"),
        (["ports", "--all", "--new"], "--all"),
    ])
    func badInputIsOneClearLine(arguments: [String], mention: String) throws {
        try expectOneLineError(arguments, mentioning: mention)
    }

    @Test func colourOnlyOnATerminalAndNeverWithNoColor() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/script") else { return }
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let db = directory.file("s.db")
        try #require(try portaudit("snapshot", "--db", db, "--quiet").status == 0)
        let command = "\(portauditBinary) changes --db \(db)"
        var environment = ProcessInfo.processInfo.environment
        environment.removeValue(forKey: "NO_COLOR")
        // script(1) gives the command a terminal.
        let terminal = try run("/usr/bin/script", ["-qec", command, "/dev/null"], environment: environment)
        #expect(terminal.status == 0)
        #expect(terminal.stdout.contains("\u{1B}["), "\(terminal.stdout)")
        environment["NO_COLOR"] = "1"
        let noColor = try run("/usr/bin/script", ["-qec", command, "/dev/null"], environment: environment)
        #expect(noColor.status == 0)
        #expect(!noColor.stdout.contains("\u{1B}["))
        #expect(noColor.stdout.contains("EVENT"))
        let pipe = try portaudit("changes", "--db", db)
        #expect(!pipe.stdout.contains("\u{1B}["))
    }

    @Test func completionsComeFromTheCommandDefinitions() throws {
        for shell in ["bash", "zsh", "fish"] {
            let result = try portaudit("--generate-completion-script", shell)
            #expect(result.status == 0, "\(shell): \(result.stderr)")
            for command in ["changes", "ports", "process", "usage", "sql", "history"] {
                #expect(result.stdout.contains(command), "\(shell) lacks \(command)")
            }
        }
        // What the generate-manual plugin reads to write the man page.
        let help = try portaudit("--experimental-dump-help")
        #expect(help.status == 0)
        let info = try #require(try parseJSON(help.stdout) as? [String: Any])
        let root = try #require(info["command"] as? [String: Any])
        let names = (root["subcommands"] as? [[String: Any]] ?? []).compactMap { $0["commandName"] as? String }
        #expect(Set(names).isSuperset(of: ["snapshot", "now", "history", "changes", "ports", "process", "usage", "sql"]))
    }
}

extension InputAndFormatTests {
    /// The integer formatter agrees with Foundation's, and reads back exactly.
    @Test func isoTimesAreExactToTheMillisecond() throws {
        let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        for ms: Int64 in [0, 1, 999, 1_764_151_500_123, 1_764_198_002_788, 951_782_400_000, 4_107_542_399_999, -1, -86_400_001] {
            let date = Timestamp.date(milliseconds: ms)
            let text = Timestamp.iso(date)
            #expect(Timestamp.parseISO(text).map(Timestamp.milliseconds) == ms, "\(ms) \(text)")
            if ms >= 0 { #expect(try style.parse(text) == Date(timeIntervalSince1970: TimeInterval(ms / 1000)) + Double(ms % 1000) / 1000 || abs(try style.parse(text).timeIntervalSince(date)) < 0.001) }
        }
        #expect(Timestamp.iso(Timestamp.date(milliseconds: 951_782_400_000)) == "2000-02-29T00:00:00.000Z")
        #expect(Timestamp.iso(Timestamp.date(milliseconds: -1)) == "1969-12-31T23:59:59.999Z")
        #expect(Timestamp.parseISO("2026-11-26T10:05:00Z") == nil)
        #expect(Timestamp.parseISO("2026-13-26T10:05:00.000Z") == nil)
    }
}

extension InputAndFormatTests {
    /// An accepted connection counts for the listener on its local address, else for the
    /// wildcard listener of its family; anything else counts for nobody.
    @Test func establishedConnectionsAreAttributedToTheirListener() {
        let any4 = ListenerKey(proto: .tcp, address: "0.0.0.0", port: 80)
        let loop4 = ListenerKey(proto: .tcp, address: "127.0.0.1", port: 8080)
        let any6 = ListenerKey(proto: .tcp, address: "::", port: 443)
        let loop6 = ListenerKey(proto: .tcp, address: "::1", port: 22)
        let established = [
            ListenerKey(proto: .tcp, address: "10.0.0.1", port: 80), ListenerKey(proto: .tcp, address: "127.0.0.1", port: 80),
            ListenerKey(proto: .tcp, address: "127.0.0.1", port: 8080), ListenerKey(proto: .tcp, address: "::ffff:127.0.0.1", port: 443),
            ListenerKey(proto: .tcp, address: "::1", port: 22), ListenerKey(proto: .tcp, address: "127.0.0.1", port: 9999),
            ListenerKey(proto: .tcp, address: "192.168.1.1", port: 8080), ListenerKey(proto: .tcp, address: "::1", port: 80),
        ]
        let counts = ConnectionCounter.attribute(established: established, to: [any4, loop4, any6, loop6])
        #expect(counts == [any4: 2, loop4: 1, any6: 1, loop6: 1])

        // Two listeners on one endpoint, one bound to a device: the one without takes the
        // connections, whatever order the listeners come in.
        let onDevice = ListenerKey(proto: .tcp, address: "0.0.0.0", port: 80, interface: "eth0")
        let toPort80 = [ListenerKey(proto: .tcp, address: "127.0.0.1", port: 80)]
        #expect(ConnectionCounter.attribute(established: toPort80, to: [onDevice, any4]) == [any4: 1, onDevice: 0])
        #expect(ConnectionCounter.attribute(established: toPort80, to: [any4, onDevice]) == [any4: 1, onDevice: 0])
    }

    @Test func sparklinesScaleToTheTopValue() {
        #expect(UsageChart.sparkline([0, 7, nil, 3.5]) == "▁█ ▅")
        #expect(UsageChart.sparkline([0, 0]) == "▁▁")
        #expect(UsageChart.bar(5, top: 10, width: 20) == String(repeating: "█", count: 10))
        #expect(UsageChart.bar(0, top: 10, width: 20) == "")
    }
}
