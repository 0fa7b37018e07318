import Foundation
import GRDB
import Testing
@testable import PortAuditKit

/// `changes` and `ports` treat a gap in the snapshots as unknown, and tell namespaces apart
/// (`--netns`), as `history` does.
extension LiveSystemTests {
    /// Listeners that open, close or keep listening while the machine is "off" for five
    /// hours, and a pair that opens and closes while it is observed.
    @Test func changesAndPortsMarkWhatSpansAGap() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let db = directory.file("store.db")
        let steady = try Listeners("tcp4")
        defer { steady.stop() }
        let closesInGap = try Listeners("tcp4")
        defer { closesInGap.stop() }

        let start = Date().addingTimeInterval(-86_400).rounded()
        let beforeGap = (0..<6).map { start.addingTimeInterval(Double($0) * 300) }
        let afterGap = (0..<3).map { beforeGap.last!.addingTimeInterval(5 * 3600 + Double($0) * 300) }
        try snapshot(db, at: beforeGap[0])
        let observed = try Listeners("udp4")
        defer { observed.stop() }
        try snapshot(db, at: beforeGap[1])
        try snapshot(db, at: beforeGap[2])
        observed.stop()
        for time in beforeGap[3...] { try snapshot(db, at: time) }
        closesInGap.stop()
        let opensInGap = try Listeners("tcp4")
        defer { opensInGap.stop() }
        for time in afterGap { try snapshot(db, at: time) }

        let ports = [steady, closesInGap, opensInGap, observed].map { $0.sockets[0].port }
        func ours(_ arguments: String...) throws -> [[String: Any]] {
            let result = try portaudit(arguments + ["--db", db, "--format", "json"])
            try #require(result.status == 0, "\(result.stderr)")
            return try #require(try parseJSON(result.stdout) as? [[String: Any]]).filter { ports.contains($0["port"] as? Int ?? -1) }
        }
        func row(_ rows: [[String: Any]], port: Int, event: String? = nil) -> [String: Any]? {
            rows.first { $0["port"] as? Int == port && (event == nil || $0["event"] as? String == event) }
        }

        let events = try ours("changes", "--since", Timestamp.iso(start.addingTimeInterval(-3600)))
        #expect(events.count == 6, "\(events)")
        #expect(row(events, port: ports[1], event: "opened")?["across_gap"] as? Bool == false)
        let closed = try #require(row(events, port: ports[1], event: "closed"))
        #expect(closed["across_gap"] as? Bool == true)
        #expect(closed["happened_after"] as? String == Timestamp.iso(beforeGap.last!))
        #expect(closed["happened_by"] as? String == Timestamp.iso(afterGap[0]))
        #expect(row(events, port: ports[2], event: "opened")?["across_gap"] as? Bool == true)
        #expect(row(events, port: ports[3], event: "opened")?["across_gap"] as? Bool == false)
        #expect(row(events, port: ports[3], event: "closed")?["across_gap"] as? Bool == false)
        #expect(events.allSatisfy { $0["netns_is_host"] as? Bool == true && $0["netns"] is NSNumber })
        // history says the same of when a listener began.
        for (port, acrossGap) in [(ports[1], false), (ports[2], true)] {
            let result = try portaudit("history", "\(port)", "--db", db, "--format", "json")
            let history = try #require(try parseJSON(result.stdout) as? [String: Any])
            let first = try #require((history["intervals"] as? [[String: Any]])?.first)
            #expect(first["began_across_gap"] as? Bool == acrossGap, "\(port)")
            #expect((history["first_seen_statement"] as? String)?.contains("across a gap") == acrossGap, "\(history)")
            let text = try portaudit("history", "\(port)", "--db", db, "--utc")
            #expect(text.stdout.contains("across a gap in the snapshots") == acrossGap, "\(text.stdout)")
            let row = try #require(try portaudit("history", "\(port)", "--db", db, "--format", "jsonl").stdout
                .split(separator: "\n").first.flatMap { try parseJSON(String($0)) as? [String: Any] })
            #expect(row["began_across_gap"] as? Bool == acrossGap, "\(row)")
        }
        // The flat rows carry the gap an interval spans, as its JSON does (`unobserved`).
        let steadyHistoryRow = try #require(try portaudit("history", "\(ports[0])", "--db", db, "--format", "jsonl").stdout
            .split(separator: "\n").first.flatMap { try parseJSON(String($0)) as? [String: Any] })
        #expect(steadyHistoryRow["across_gap"] as? Bool == true, "\(steadyHistoryRow)")
        let changesTable = try portaudit("changes", "--db", db, "--since", Timestamp.iso(start), "--utc", "--wide")
        let markedLines = changesTable.stdout.split(separator: "\n").filter { $0.contains("(across gap)") }
        #expect(markedLines.count == 2, "\(changesTable.stdout)")
        #expect(markedLines.allSatisfy { line in [ports[1], ports[2]].contains { line.contains("127.0.0.1:\($0) ") } },
                "\(changesTable.stdout)")

        // ports: presence across the gap is marked; first and last seen stay the snapshots that saw it.
        let listeners = try ours("ports", "--all")
        #expect(listeners.count == 4)
        let steadyRow = try #require(row(listeners, port: ports[0]))
        #expect(steadyRow["across_gap"] as? Bool == true)
        #expect(steadyRow["first_seen"] as? String == Timestamp.iso(beforeGap[0]))
        #expect(steadyRow["last_seen"] as? String == Timestamp.iso(afterGap.last!))
        let goneRow = try #require(row(listeners, port: ports[1]))
        #expect(goneRow["across_gap"] as? Bool == false, "it was last seen before the gap")
        #expect(goneRow["last_seen"] as? String == Timestamp.iso(beforeGap.last!))
        #expect(row(listeners, port: ports[2])?["across_gap"] as? Bool == false)
        #expect(row(listeners, port: ports[3])?["across_gap"] as? Bool == false)
        let portsTable = try portaudit("ports", "--db", db, "--port", "\(ports[0])", "--utc", "--wide")
        // Its latest snapshot is hours old, so not "now" but that snapshot's time.
        #expect(portsTable.stdout.contains("\(Timestamp.human(afterGap.last!, utc: true)) (gap)"), "\(portsTable.stdout)")
        let unmarked = try portaudit("ports", "--db", db, "--port", "\(ports[2])", "--utc", "--wide")
        #expect(unmarked.status == 0 && !unmarked.stdout.contains("(gap)"), "\(unmarked.stdout)")
    }

    /// The same port in the host and in a namespace, opened and closed at the same
    /// snapshots: changes and ports tell the two apart and --netns chooses.
    @Test func changesAndPortsTellNamespacesApart() throws {
        guard geteuid() == 0 else { return }
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let db = directory.file("store.db")
        let namespace = try NetworkNamespaceFixture()
        defer { namespace.remove() }
        let port = try freePort()
        try #require(try portaudit("snapshot", "--db", db, "--quiet").status == 0)
        let host = try Listeners("tcp4:\(port)")
        defer { host.stop() }
        let inside = try namespace.listeners("tcp4:\(port)")
        defer { inside.stop() }
        let hostPID = Int(host.sockets[0].pid), insidePID = Int(inside.sockets[0].pid)
        try #require(try portaudit("snapshot", "--db", db, "--quiet").status == 0)
        host.stop()
        inside.stop()
        try #require(try portaudit("snapshot", "--db", db, "--quiet").status == 0)

        func rows(_ arguments: String...) throws -> [[String: Any]] {
            let result = try portaudit(arguments + ["--db", db, "--format", "json", "--port", "\(port)"])
            try #require(result.status == 0, "\(result.stderr)")
            return try #require(try parseJSON(result.stdout) as? [[String: Any]])
        }
        func holders(_ row: [String: Any]) -> [String] {
            (row["holders_after"] as? [String] ?? []) + (row["holders_before"] as? [String] ?? [])
        }

        let events = try rows("changes")
        #expect(events.count == 4, "\(events)")
        let hostEvents = events.filter { $0["netns_is_host"] as? Bool == true }
        let insideEvents = events.filter { $0["netns_name"] as? String == namespace.name }
        #expect(hostEvents.map { $0["event"] as? String } == ["opened", "closed"])
        #expect(insideEvents.map { $0["event"] as? String } == ["opened", "closed"])
        #expect(hostEvents.allSatisfy { holders($0).allSatisfy { $0.hasSuffix("[\(hostPID)]") } && !holders($0).isEmpty })
        #expect(insideEvents.allSatisfy { holders($0).allSatisfy { $0.hasSuffix("[\(insidePID)]") } && !holders($0).isEmpty })
        #expect(insideEvents.allSatisfy { ($0["netns"] as? NSNumber)?.uint64Value == namespace.inode && $0["netns_is_host"] as? Bool == false })
        #expect(try rows("changes", "--netns", "host").map(holders) == hostEvents.map(holders))
        #expect(try rows("changes", "--netns", namespace.name).map(holders) == insideEvents.map(holders))
        #expect(try rows("changes", "--netns", String(namespace.inode)).count == 2)
        let changesTable = try portaudit("changes", "--db", db, "--port", "\(port)", "--wide")
        #expect(changesTable.stdout.split(separator: "\n").filter { $0.contains("in netns \(namespace.name)") }.count == 2,
                "\(changesTable.stdout)")

        let listeners = try rows("ports", "--all")
        #expect(listeners.count == 2)
        #expect(listeners.first?["netns_is_host"] as? Bool == true, "the host's listener comes first")
        #expect(listeners.last?["netns_name"] as? String == namespace.name)
        #expect((listeners.last?["netns"] as? NSNumber)?.uint64Value == namespace.inode)
        let hostOnly = try rows("ports", "--all", "--netns", "host")
        #expect(hostOnly.count == 1 && hostOnly.first?["netns_is_host"] as? Bool == true)
        let insideOnly = try rows("ports", "--all", "--netns", String(namespace.inode))
        #expect(insideOnly.count == 1 && insideOnly.first?["netns_name"] as? String == namespace.name)
        let portsTable = try portaudit("ports", "--db", db, "--all", "--port", "\(port)", "--wide")
        #expect(portsTable.stdout.contains("in netns \(namespace.name)"), "\(portsTable.stdout)")

        for command in ["changes", "ports"] {
            let bogus = try portaudit(command, "--db", db, "--netns", "portaudit-no-such-namespace")
            #expect(bogus.status != 0)
            #expect(bogus.stderr == "portaudit: no network namespace 'portaudit-no-such-namespace' in the store: give host, all, or an inode or /run/netns name that a snapshot saw\n",
                    "\(bogus.stderr)")
            let invalid = try portaudit(command, "--db", db, "--netns", "a/b")
            #expect(invalid.status != 0 && invalid.stderr.hasPrefix("portaudit: ") && invalid.stderr.split(separator: "\n").count == 1)
        }
    }
}
