import Foundation
import GRDB
import Testing
@testable import PortAuditKit

/// A store built by real snapshots of real loopback listeners: one opened, closed, and
/// taken over by another process between snapshots, with connections made to it.
struct HistoryScenario {
    let directory: TemporaryDirectory
    let db: String
    let tcpPort: Int
    let udpPort: Int
    let firstPid: Int
    let secondPid: Int
    let udpPid: Int
    /// ISO times of the snapshots, in order.
    let times: [String]
    let survivor: Listeners

    /// S1 baseline; S2 tcp and udp opened; S3 tcp held by another process with 3
    /// connections waiting, udp closed; S4 unchanged; S5 connections gone.
    static func build() throws -> HistoryScenario {
        let directory = try TemporaryDirectory()
        let db = directory.file("store.db")
        let tcpPort = try freePort()
        var udpPort = try freePort()
        while udpPort == tcpPort { udpPort = try freePort() }
        func snapshot() throws {
            let result = try portaudit("snapshot", "--db", db, "--quiet")
            guard result.status == 0 else { throw TestFailure("snapshot failed: \(result.stderr)") }
        }
        try snapshot()
        let first = try Listeners("tcp4:\(tcpPort)", "udp4:\(udpPort)")
        try snapshot()
        let firstPid = Int(first.sockets.first { $0.proto == "tcp" }!.pid)
        let udpPid = Int(first.sockets.first { $0.proto == "udp" }!.pid)
        first.stop()
        let second = try Listeners("tcp4:\(tcpPort)")
        let clients = try (0..<3).map { _ in try connectLoopback(port: tcpPort) }
        try snapshot()
        try snapshot()
        clients.forEach { close($0) }
        // The closed connections leave the server side to the kernel; wait until it has
        // none on the port any more (a deadline, not a timed assertion).
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            let ss = try run("/usr/bin/env", ["ss", "-Htn", "state", "established", "( sport = :\(tcpPort) )"])
            if ss.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { break }
            usleep(20_000)
        }
        try snapshot()
        let times = try DatabaseQueue(path: db).read { db in
            try Int64.fetchAll(db, sql: "SELECT started_at FROM snapshot ORDER BY id")
        }.map { Timestamp.iso(Timestamp.date(milliseconds: $0)) }
        return HistoryScenario(directory: directory, db: db, tcpPort: tcpPort, udpPort: udpPort, firstPid: firstPid,
                               secondPid: Int(second.sockets[0].pid), udpPid: udpPid, times: times, survivor: second)
    }

    func finish() {
        survivor.stop()
        directory.remove()
    }

    func json(_ arguments: String...) throws -> Any {
        let result = try portaudit(arguments + ["--db", db, "--format", "json"])
        guard result.status == 0 else { throw TestFailure("\(arguments): \(result.stderr)") }
        return try parseJSON(result.stdout)
    }

    func rows(_ arguments: String...) throws -> [[String: Any]] {
        let result = try portaudit(arguments + ["--db", db, "--format", "json"])
        guard result.status == 0 else { throw TestFailure("\(arguments): \(result.stderr)") }
        guard let rows = try parseJSON(result.stdout) as? [[String: Any]] else { throw TestFailure("not an array: \(result.stdout)") }
        return rows
    }

    func ours(_ rows: [[String: Any]]) -> [[String: Any]] {
        rows.filter { [tcpPort, udpPort].contains($0["port"] as? Int ?? -1) }
    }
}

/// A TCP connection from this process to a loopback port; the caller closes it.
func connectLoopback(port: Int) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
        }
    }
    guard connected else {
        close(fd)
        throw TestFailure("cannot connect to 127.0.0.1:\(port)")
    }
    return fd
}

extension LiveSystemTests {
    @Test func historyCommandsAnswerFromRealSnapshots() throws {
        let s = try HistoryScenario.build()
        defer { s.finish() }
        try #require(s.times.count == 5)
        let t = s.times

        // changes: every event of our listeners, in order, with its bounds.
        let events = s.ours(try s.rows("changes"))
        let summary = events.map { "\($0["event"]!) \($0["protocol"]!) \($0["port"]!) \($0["happened_after"]!) \($0["happened_by"]!)" }
        let expected = [
            "opened tcp \(s.tcpPort) \(t[0]) \(t[1])", "opened udp \(s.udpPort) \(t[0]) \(t[1])",
            "closed udp \(s.udpPort) \(t[1]) \(t[2])", "holder_changed tcp \(s.tcpPort) \(t[1]) \(t[2])",
        ]
        #expect(summary.sorted() == expected.sorted(), "\(summary)")
        let order = events.compactMap { $0["happened_by"] as? String }
        #expect(order == order.sorted())
        let takeover = try #require(events.first { $0["event"] as? String == "holder_changed" })
        #expect((takeover["holders_before"] as? [String])?.contains { $0.hasSuffix("[\(s.firstPid)]") } == true)
        #expect((takeover["holders_after"] as? [String])?.contains { $0.hasSuffix("[\(s.secondPid)]") } == true)
        #expect((takeover["holders_after"] as? [String])?.contains { $0.hasSuffix("[\(s.firstPid)]") } == false)
        let closed = try #require(events.first { $0["event"] as? String == "closed" })
        #expect((closed["holders_before"] as? [String])?.contains { $0.hasSuffix("[\(s.udpPid)]") } == true)
        #expect(closed["holders_after"] is NSNull)

        // Windows: --since keeps what the snapshot saw from then on; --until what may have
        // happened before it.
        let late = s.ours(try s.rows("changes", "--since", t[2])).map { $0["event"] as? String ?? "" }
        #expect(late.sorted() == ["closed", "holder_changed"])
        let early = s.ours(try s.rows("changes", "--until", t[1])).map { $0["event"] as? String ?? "" }
        #expect(early == ["opened", "opened"])
        #expect(s.ours(try s.rows("changes", "--since", t[3])).isEmpty)
        let onePort = try s.rows("changes", "--port", "\(s.tcpPort)/tcp")
        #expect(onePort.count == 2 && onePort.allSatisfy { $0["port"] as? Int == s.tcpPort })

        // ports: first and last seen, listening now, holders.
        let all = s.ours(try s.rows("ports", "--all"))
        let tcp = try #require(all.first { $0["protocol"] as? String == "tcp" })
        #expect(tcp["first_seen"] as? String == t[1])
        #expect(tcp["appeared_after"] as? String == t[0])
        #expect(tcp["last_seen"] as? String == t[4])
        #expect(tcp["listening"] as? Bool == true)
        #expect(tcp["holder_count"] as? Int == 2)
        let udp = try #require(all.first { $0["protocol"] as? String == "udp" })
        #expect(udp["last_seen"] as? String == t[1])
        #expect(udp["listening"] as? Bool == false)
        #expect(udp["holder_count"] as? Int == 1)
        for row in all {
            let look = row["service"] is NSNull || row["range"] as? String == "dynamic"
            #expect(row["worth_a_look"] as? Bool == look)
        }
        #expect(s.ours(try s.rows("ports")).map { $0["protocol"] as? String } == ["tcp"])
        #expect(s.ours(try s.rows("ports", "--since", t[1])).count == 2)
        #expect(s.ours(try s.rows("ports", "--since", t[2])).count == 1)
        #expect(s.ours(try s.rows("ports", "--new", "--since", t[1])).count == 2)
        #expect(s.ours(try s.rows("ports", "--new", "--since", t[2])).isEmpty)
        // Listeners already there at the first snapshot are not new, whatever the window.
        let newEver = try s.rows("ports", "--new", "--since", "2000-01-01")
        #expect(newEver.allSatisfy { $0["appeared_after"] is String })
        #expect(s.ours(newEver).count == 2)
        #expect(try s.rows("ports", "--all", "--unregistered").allSatisfy { $0["worth_a_look"] as? Bool == true })

        // process: by pid, each stretch with its bounds.
        let firstHeld = try s.rows("process", "\(s.firstPid)")
        try #require(firstHeld.count == 1)
        #expect(firstHeld[0]["port"] as? Int == s.tcpPort)
        #expect(firstHeld[0]["first_seen"] as? String == t[1])
        #expect(firstHeld[0]["last_seen"] as? String == t[1])
        #expect(firstHeld[0]["gone_by"] as? String == t[2])
        #expect(firstHeld[0]["listening"] as? Bool == false)
        let secondHeld = try s.rows("process", "\(s.secondPid)")
        #expect(secondHeld.map { $0["first_seen"] as? String } == [t[2]])
        #expect(secondHeld.first?["listening"] as? Bool == true)
        let name = try #require(firstHeld[0]["process"] as? String)
        let byName = s.ours(try s.rows("process", name)).compactMap { $0["pid"] as? Int }
        #expect(Set(byName).isSuperset(of: [s.firstPid, s.secondPid, s.udpPid]))
        // By executable path, also through a link to it (as /usr/bin/python3 leads to python3.11).
        let exe = try #require(ProcFiles.readLink("/proc/\(s.secondPid)/exe"))
        let link = FileManager.default.temporaryDirectory.appendingPathComponent("portaudit-exe-link-\(getpid())").path
        try? FileManager.default.removeItem(atPath: link)
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: exe)
        defer { try? FileManager.default.removeItem(atPath: link) }
        for path in [exe, link] {
            let byPath = s.ours(try s.rows("process", path)).compactMap { $0["pid"] as? Int }
            #expect(Set(byPath).isSuperset(of: [s.firstPid, s.secondPid, s.udpPid]), "process \(path)")
        }

        // usage: the 3 connections made above, waiting in the accept queue, then gone.
        // Weeks, so that the few seconds of this test are one period but for a rare week boundary.
        let usage = try s.rows("usage", "--by", "week", "--port", "\(s.tcpPort)", "--since", "2h")
        #expect(usage.compactMap { $0["connections_max"] as? Int }.max() == 3)
        #expect(usage.compactMap { $0["accept_queue_max"] as? Int }.max() == 3)
        #expect(usage.compactMap { $0["opened"] as? Int }.reduce(0, +) == 1)
        #expect(usage.compactMap { $0["changed"] as? Int }.reduce(0, +) == 1)
        #expect(usage.compactMap { $0["closed"] as? Int }.reduce(0, +) == 0)
        #expect(usage.compactMap { $0["snapshots"] as? Int }.reduce(0, +) == 5)
        #expect(usage.compactMap { $0["listeners"] as? Int }.max() == 1)
        #expect(usage.compactMap { $0["processes"] as? Int }.max() == 2)
        let tooMany = try portaudit(["usage", "--by", "hour", "--since", "1990-01-01", "--db", s.db])
        #expect(tooMany.status != 0 && tooMany.stdout.isEmpty)
        #expect(tooMany.stderr.hasPrefix("portaudit: ") && tooMany.stderr.contains("more than"), "\(tooMany.stderr)")
        #expect(tooMany.stderr.split(separator: "\n").count == 1)
        // Per listener: seen by S2 to S5, with 0, 3, 3 and 0 connections.
        let perListener = try s.rows("usage", "--per-listener", "--port", "\(s.tcpPort)", "--since", "2h")
        try #require(perListener.count == 1)
        #expect(perListener[0]["snapshots"] as? Int == 4)
        #expect(perListener[0]["connections_max"] as? Int == 3)
        #expect(perListener[0]["connections_avg"] as? Double == 1.5)
        #expect(perListener[0]["accept_queue_max"] as? Int == 3)
        // Stored only when it changed: 3 and 3 at S3, nothing at the unchanged S4, and at S5
        // no connection established any more, but 3 still waiting to be accepted (the
        // listener never accepts; the kernel keeps them queued in CLOSE_WAIT).
        let stored = try DatabaseQueue(path: s.db).read { db in
            try Row.fetchAll(db, sql: """
                SELECT u.snapshot_id, u.connections, u.accept_queue FROM listener_usage u
                JOIN listener l ON l.id = u.listener_id WHERE l.port = ? ORDER BY u.snapshot_id
                """, arguments: [s.tcpPort]).map { "\($0[0] as Int) \($0[1] as Int) \($0[2] as Int)" }
        }
        #expect(stored == ["3 3 3", "5 0 3"])

        try checkFormats(s)
        try checkSummariesMatchHistory(s)
        try checkDocumentedQueries(s)
        try checkSQLIsReadOnly(s.db)
    }

    /// JSON parses, JSON Lines and CSV agree field for field, CSV round-trips, tables fit
    /// 80 columns, and one concept has one field name in every command.
    private func checkFormats(_ s: HistoryScenario) throws {
        let commands: [[String]] = [
            ["now"], ["history", "\(s.tcpPort)"], ["changes"], ["ports", "--all"], ["process", "\(s.secondPid)"],
            ["usage", "--by", "hour", "--since", "3h"], ["usage", "--per-listener", "--since", "3h"],
            ["sql", "SELECT * FROM port_events"],
        ]
        var headers: [String: [String]] = [:]
        for command in commands {
            let name = command.contains("--per-listener") ? "usage-per-listener" : command[0]
            let store = command[0] == "now" ? [] : ["--db", s.db]
            let json = try portaudit(command + store + ["--format", "json"])
            #expect(json.status == 0, "\(command): \(json.stderr)")
            #expect((try? parseJSON(json.stdout)) != nil, "\(command): json does not parse")

            let lines = try portaudit(command + store + ["--format", "jsonl"])
            #expect(lines.status == 0)
            let objects = try lines.stdout.split(separator: "\n").map { line -> [String: Any] in
                try #require(try parseJSON(String(line)) as? [String: Any])
            }
            #expect(!objects.isEmpty, "\(command) printed no rows")

            let csv = try portaudit(command + store + ["--format", "csv"])
            #expect(csv.status == 0)
            let table = try CSVReader.parse(csv.stdout)
            let header = try #require(table.first)
            headers[name] = header
            #expect(table.count == objects.count + 1, "\(command): csv rows")
            for (cells, object) in zip(table.dropFirst(), objects) {
                #expect(Set(object.keys) == Set(header))
                for (field, cell) in zip(header, cells) {
                    #expect(cell == CSVReader.text(object[field]), "\(command) \(field): \(cell) vs \(String(describing: object[field]))")
                }
            }
            // JSON times are ISO 8601 UTC.
            for object in objects {
                for (key, value) in object where key.hasSuffix("_seen") || key.hasPrefix("happened_") || key == "gone_by" || key.hasPrefix("period_") {
                    if let text = value as? String { #expect(Timestamp.parseISO(text) != nil, "\(key): \(text)") }
                }
            }

            let text = try portaudit(command + store)
            #expect(text.status == 0)
            #expect(!text.stdout.contains("\u{1B}"), "colour only on a terminal")
            for line in text.stdout.split(separator: "\n") { #expect(line.count <= 80, "\(command): \(line)") }
        }
        let listenerCommands = ["now", "history", "changes", "ports", "process", "usage-per-listener"]
        for name in listenerCommands {
            #expect(Set(headers[name] ?? []).isSuperset(of: ["protocol", "address", "port", "interface", "service"]), "\(name)")
        }
        for name in ["now", "history", "process"] {
            #expect(Set(headers[name] ?? []).isSuperset(of: ["pid", "process", "user", "cmdline"]), "\(name)")
        }
        let synonyms: Set<String> = ["proto", "name", "comm", "command", "program", "local_address", "local_port", "host",
                                     "first", "last", "seen", "start", "end", "username", "ip"]
        for (name, header) in headers where name != "sql" {
            #expect(synonyms.isDisjoint(with: header), "\(name) uses \(synonyms.intersection(header))")
        }
    }

    /// The summaries the triggers of migration 0007 keep equal what a prune rebuilds them from
    /// (its views until migration 0010), and the migration itself, run on the same history,
    /// writes the same.
    private func checkSummariesMatchHistory(_ s: HistoryScenario) throws {
        let tables = ["listener_span": "listener_id", "listener_holder_name": "listener_id, name"]
        func contents(_ path: String) throws -> [String: [Row]] {
            try DatabaseQueue(path: path).read { db in
                try tables.reduce(into: [:]) { all, table in
                    all[table.key] = try Row.fetchAll(db, sql: "SELECT * FROM \(table.key) ORDER BY \(table.value)")
                }
            }
        }
        let kept = try contents(s.db)
        #expect(kept["listener_span"]?.count ?? 0 >= 2)
        #expect(kept["listener_holder_name"]?.isEmpty == false)
        try DatabaseQueue(path: s.db).read { db in
            for (table, query) in [("listener_span", SummariesFromHistory.listenerSpan),
                                   ("listener_holder_name", SummariesFromHistory.listenerHolderName)] {
                let computed = try Row.fetchAll(db, sql: "SELECT * FROM (\(query)) ORDER BY \(tables[table]!)")
                #expect(kept[table] == computed, "\(table): kept \(kept[table] ?? []) computed \(computed)")
            }
        }
        let remigrated = try contents(try remigrate0007(s.db, into: s.directory.file("remigrated.db")))
        for table in ["listener_span", "listener_holder_name"] { #expect(remigrated[table] == kept[table], "\(table)") }
    }

    /// Every SQL example of docs/schema.md runs, in portaudit sql and in the sqlite3 shell,
    /// and returns rows on this store.
    private func checkDocumentedQueries(_ s: HistoryScenario) throws {
        let doc = try String(contentsOf: repositoryRoot.appendingPathComponent("docs/schema.md"), encoding: .utf8)
        let blocks = doc.components(separatedBy: "```sql\n").dropFirst().map { $0.components(separatedBy: "\n```")[0] }
        #expect(blocks.count >= 8)
        for query in blocks {
            let ours = try portaudit(["sql", query, "--db", s.db, "--format", "json"])
            #expect(ours.status == 0, "\(query): \(ours.stderr)")
            let rows = try #require(try parseJSON(ours.stdout) as? [[String: Any]])
            #expect(!rows.isEmpty, "no rows: \(query)")
            let shell = try run("/usr/bin/env", ["sqlite3", "-readonly", "-json", s.db, query])
            #expect(shell.status == 0, "sqlite3: \(query): \(shell.stderr)")
            let shellRows = try #require(try parseJSON(shell.stdout) as? [[String: Any]])
            #expect(shellRows.count == rows.count, "\(query)")
        }
        // The views' times are the commands' times, to the millisecond.
        let viewTimes = try s.rows("sql", "SELECT started FROM snapshots ORDER BY snapshot_id").compactMap { $0["started"] as? String }
        #expect(viewTimes == s.times)
    }

    private func checkSQLIsReadOnly(_ db: String) throws {
        let before = try storeBytes(db)
        let attempts = [
            "INSERT INTO host (machine_id, hostname) VALUES ('x', 'y')", "DELETE FROM snapshot", "DROP TABLE holding",
            "UPDATE process SET name = 'x'", "ATTACH DATABASE '\(db).other' AS other", "PRAGMA writable_schema = 1",
            "PRAGMA writable_schema = ON", "CREATE TABLE t (x)", "CREATE TEMP VIEW v AS SELECT 1", "BEGIN IMMEDIATE",
            "SELECT 1; DELETE FROM snapshot", "VACUUM", "REINDEX", "ANALYZE", "PRAGMA journal_mode = DELETE",
            "DETACH DATABASE main", "ALTER TABLE host ADD COLUMN z", "UPDATE sqlite_master SET sql = ''",
            "UPDATE sqlite_schema SET name = 'x' WHERE name = 'host'", "SELECT fts3_tokenizer('simple')",
        ]
        for query in attempts {
            let result = try portaudit(["sql", query, "--db", db])
            #expect(result.status != 0, "\(query) was run")
            #expect(result.stdout.isEmpty)
            #expect(result.stderr.hasPrefix("portaudit: "), "\(query): \(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1, "\(query): \(result.stderr)")
        }
        #expect(try storeBytes(db) == before, "the store changed")
        for query in ["DELETE FROM snapshot", "ATTACH DATABASE 'x' AS x", "PRAGMA writable_schema = 1", "DROP TABLE holding",
                      "SELECT hex(FTS3_TOKENIZER('simple'))"] {
            let result = try portaudit(["sql", query, "--db", db])
            #expect(result.stderr.contains("read-only"), "\(query): \(result.stderr)")
        }
        let reads = try portaudit(["sql", "PRAGMA table_info(snapshot)", "--db", db, "--format", "csv"])
        #expect(reads.status == 0 && reads.stdout.contains("started_at"))
        // Table-valued functions only read, though SQLite's authorizer is asked about the schema table.
        let columns = try portaudit(["sql", "SELECT group_concat(name) FROM pragma_table_info('snapshot')", "--db", db, "--format", "csv"])
        #expect(columns.status == 0 && columns.stdout.contains("started_at"), "\(columns.stderr)")
        let json = try portaudit(["sql", "SELECT sum(value) AS total FROM json_each('[1, 2, 3]')", "--db", db, "--format", "csv"])
        #expect(json.status == 0 && json.stdout == "total\n6\n", "\(json.stdout) \(json.stderr)")
        #expect(try storeBytes(db) == before, "the store changed")
    }
}

/// RFC 4180 reading, for checking what portaudit writes.
enum CSVReader {
    static func parse(_ text: String) throws -> [[String]] {
        var rows: [[String]] = [], row: [String] = [], field = ""
        var quoted = false, wasQuoted = false
        var iterator = Array(text.hasSuffix("\n") ? String(text.dropLast()) : text).makeIterator()
        var pending: Character? = nil
        func next() -> Character? {
            if let p = pending { pending = nil; return p }
            return iterator.next()
        }
        while let c = next() {
            if quoted {
                if c == "\"" {
                    if let n = next() {
                        if n == "\"" { field.append("\"") } else { quoted = false; pending = n }
                    } else { quoted = false }
                } else { field.append(c) }
            } else if c == "\"" && field.isEmpty && !wasQuoted {
                quoted = true; wasQuoted = true
            } else if c == "," {
                row.append(field); field = ""; wasQuoted = false
            } else if c == "\n" {
                row.append(field); rows.append(row); row = []; field = ""; wasQuoted = false
            } else {
                field.append(c)
            }
        }
        if quoted { throw TestFailure("unterminated quoted field") }
        row.append(field)
        rows.append(row)
        return rows
    }

    /// What a JSON value becomes in a CSV cell.
    static func text(_ value: Any?) -> String {
        switch value {
        case nil, is NSNull: return ""
        case let array as [Any]: return array.map { text($0) }.joined(separator: ", ")
        case let number as NSNumber:
            // JSONSerialization gives booleans as NSNumbers of type char.
            if String(cString: number.objCType) == "c" { return number.boolValue ? "true" : "false" }
            return "\(number)"
        case let string as String: return string
        default: return "\(value!)"
        }
    }
}
