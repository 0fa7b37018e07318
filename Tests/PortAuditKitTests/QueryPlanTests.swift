import Foundation
import GRDB
import Testing
@testable import PortAuditKit

/// The statements history, changes, ports and process run, planned by SQLite on a migrated
/// store: none of them reads a whole big table, so their cost follows what they answer, not the
/// store's age. The SQL comes from the query types themselves, not from copies.
///
/// The rule: a plan step `SCAN x` is a failure unless x is
///   - a tiny table (host, netns: one row per machine or namespace),
///   - a CTE, a subquery or json_each of the statement (rows the statement already narrowed),
///   - or a covering scan of a partial index (interval_open holds only open intervals).
/// And every plan searches at least one index or primary key. The forms that must read
/// everything by definition (changes without --since, ports --all without --port) are not
/// checked.
@Suite struct QueryPlanTests {
    static let bigTables: Set<String> = ["snapshot", "listener_interval", "holding", "process", "listener"]
    static let partialIndexes: Set<String> = ["interval_open"]

    /// Which table each name in a statement stands for ("FROM holding h" → h: holding). A name
    /// that is no table's alias is a CTE, a subquery or json_each. A name given to a big table
    /// anywhere in the statement counts as that big table.
    func tables(_ sql: String) -> [String: Set<String>] {
        var aliases: [String: Set<String>] = [:]
        let pattern = try! NSRegularExpression(pattern: #"\b(host|netns|snapshot|listener_interval|listener|holding|process)\b(?:\s+(?:AS\s+)?(\w+))?"#)
        for match in pattern.matches(in: sql, range: NSRange(sql.startIndex..., in: sql)) {
            let table = String(sql[Range(match.range(at: 1), in: sql)!])
            aliases[table, default: []].insert(table)
            if let range = Range(match.range(at: 2), in: sql) { aliases[String(sql[range]), default: []].insert(table) }
        }
        return aliases
    }

    func plan(_ db: Database, _ sql: String, _ arguments: StatementArguments) throws -> [String] {
        try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql, arguments: arguments).map { $0["detail"] as String }
    }

    /// The plan steps that break the rule, with the reason.
    func violations(_ steps: [String], sql: String) -> [String] {
        let aliases = tables(sql)
        var bad: [String] = []
        for step in steps where step.hasPrefix("SCAN ") {
            let words = step.split(separator: " ").map(String.init)
            let scanned = aliases[words[1]] ?? []
            if scanned.isDisjoint(with: Self.bigTables) { continue }  // tiny table, CTE, subquery
            if let using = words.firstIndex(of: "INDEX"), using + 1 < words.count,
               Self.partialIndexes.contains(words[using + 1]) { continue }
            bad.append(step)
        }
        if !steps.contains(where: { $0.contains(" USING ") && ($0.contains("INDEX") || $0.contains("PRIMARY KEY")) }) {
            bad.append("no index used at all")
        }
        return bad
    }

    func check(_ db: Database, _ label: String, _ sql: String, _ arguments: StatementArguments = []) throws {
        let steps = try plan(db, sql, arguments)
        #expect(!steps.isEmpty, "\(label): no plan")
        let bad = violations(steps, sql: sql)
        #expect(bad.isEmpty, "\(label) reads a whole table: \(bad)\n\(steps.joined(separator: "\n"))")
    }

    @Test func historyChangesPortsAndProcessSearchIndexes() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.file("plans.db")
        _ = try Store(path: path, access: .readWrite)
        let queue = try DatabaseQueue(path: path)
        try queue.read { db in
            try check(db, "history", HistoryQuery.sql(proto: false, netns: .all), [22])
            try check(db, "history/tcp", HistoryQuery.sql(proto: true, netns: .all), [22, "tcp"])
            try check(db, "history --netns host", HistoryQuery.sql(proto: false, netns: .host), [22])
            try check(db, "history --netns ID", HistoryQuery.sql(proto: false, netns: .id("blue")), [22, 1, "blue"])
            try check(db, "history holders", HistoryQuery.holdingsSQL, ["[1,2,3]"])
            try check(db, "latest snapshot", HistoryQuery.latestSnapshotSQL, [1])
            try check(db, "newest snapshot", HistoryQuery.anySnapshotSQL)

            for (until, ports, proto) in [(false, false, false), (true, false, false), (true, true, true), (false, true, false)] {
                var arguments: [String: (any DatabaseValueConvertible)?] = ["since": 0]
                if until { arguments["until"] = 1 }
                if ports { arguments["firstPort"] = 1; arguments["lastPort"] = 2 }
                if proto { arguments["proto"] = "tcp" }
                for detail in [true, false] {  // false: the event counts of `usage`
                    try check(db, "changes --since until:\(until) ports:\(ports) detail:\(detail)",
                              ChangesQuery.sql(since: true, until: until, ports: ports, proto: proto, detail: detail),
                              StatementArguments(arguments))
                }
            }

            let scopes: [(String, PortsFilter.Scope)] = [("now", .listeningNow), ("--since", .seenSince(Date())),
                                                         ("--new", .newSince(Date()))]
            for (label, scope) in scopes {
                let arguments: StatementArguments = ["since": 0]
                try check(db, "ports \(label)", PortsQuery.sql(scope: scope, ports: false, proto: false), arguments)
                try check(db, "ports \(label) --port", PortsQuery.sql(scope: scope, ports: true, proto: true),
                          ["since": 0, "firstPort": 1, "lastPort": 2, "proto": "tcp"])
            }

            // /proc/self/exe resolves to another path: the two-path form.
            for selector in [ProcessSelector.pid(42), .name("nginx"), .name("/usr/sbin/nginx"), .name("/proc/self/exe")] {
                let (condition, arguments) = ProcessHistoryQuery.condition(selector)
                try check(db, "process \(selector)", ProcessHistoryQuery.sql(condition: condition), arguments)
            }
        }
    }

    /// The rule itself catches what it is there for: a whole-table scan, including one
    /// through an index that is not partial.
    @Test func ruleRejectsWholeTableScans() throws {
        let sql = "SELECT * FROM host h JOIN snapshot s ON s.host_id = h.id JOIN listener_interval i JOIN holding hd"
        #expect(!violations(["SCAN i"], sql: sql).isEmpty)
        #expect(!violations(["SCAN s USING COVERING INDEX snapshot_by_time", "SEARCH h USING INTEGER PRIMARY KEY (rowid=?)"],
                            sql: sql).isEmpty)
        #expect(violations(["SCAN i USING COVERING INDEX interval_open"], sql: sql).isEmpty)
        #expect(violations(["SCAN h", "SEARCH s USING COVERING INDEX snapshot_by_time (host_id=? AND started_at>?)"], sql: sql).isEmpty)
        #expect(!violations(["SCAN h"], sql: sql).isEmpty, "a plan with no index at all")
        #expect(!violations(["SCAN h", "SEARCH s USING INDEX x (a=?)"], sql: sql + " JOIN holding h").isEmpty,
                "h names holding somewhere in the statement")
    }
}

/// The registry's port index, built from the bytes, answers as the fully parsed registry
/// does, for every port.
@Suite struct RegistryIndexTests {
    @Test func everyPortAgreesWithTheParsedRegistry() {
        var byPort: [Int: Set<Registration>] = [:]
        for entry in ServiceRegistry.entries {
            for port in entry.ports where (0...65535).contains(port) { byPort[port, default: []].insert(entry.registration) }
        }
        var named = 0
        for port in 0...65535 {
            #expect(Set(ServiceRegistry.lookup(port: UInt16(port))) == (byPort[port] ?? []), "port \(port)")
            if !(byPort[port] ?? []).isEmpty { named += 1 }
        }
        #expect(named > 5_000)  // 6,171 ports carry a registration in the embedded registry
        #expect(ServiceRegistry.name(port: 22, proto: .tcp) == "ssh")
    }

    /// `name` decodes only the service field; it answers as the first named registration `lookup` gives.
    @Test func nameIsTheFirstNamedRegistration() {
        var differ: [String] = []
        for port in 0...65535 {
            for proto in [nil, TransportProtocol.tcp, .udp] {
                let expected = ServiceRegistry.lookup(port: UInt16(port), proto: proto).first { !$0.service.isEmpty }?.service
                let name = ServiceRegistry.name(port: UInt16(port), proto: proto)
                if name != expected { differ.append("\(port)/\(proto?.rawValue ?? "any"): \(name ?? "nil") != \(expected ?? "nil")") }
            }
        }
        #expect(differ.isEmpty, "\(differ.prefix(10))")
        #expect(ServiceRegistry.name(port: 1328, proto: nil) == "ewall")
        #expect(ServiceRegistry.name(port: 65535, proto: .tcp) == nil)
    }
}
