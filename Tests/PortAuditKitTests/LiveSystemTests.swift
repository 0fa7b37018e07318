import Foundation
import GRDB
import Testing
@testable import PortAuditKit

/// Tests against the real kernel, with real listeners. Serialized: each one needs the
/// machine's listener table to change only as it says.
@Suite(.serialized) struct LiveSystemTests {
    @Test func historyShowsEachProcessThatHeldThePort() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let db = directory.file("store.db")
        let port = try freePort()

        try #require(try portaudit("snapshot", "--db", db, "--quiet").status == 0)
        let first = try Listeners("tcp4:\(port)")
        try #require(try portaudit("snapshot", "--db", db, "--quiet").status == 0)
        first.stop()
        let second = try Listeners("tcp4:\(port)")
        defer { second.stop() }
        try #require(try portaudit("snapshot", "--db", db, "--quiet").status == 0)

        let times = try DatabaseQueue(path: db).read { db in
            try Int64.fetchAll(db, sql: "SELECT started_at FROM snapshot ORDER BY id")
        }.map { Timestamp.iso(Timestamp.date(milliseconds: $0)) }
        try #require(times.count == 3)

        let result = try portaudit("history", "\(port)", "--db", db, "--format", "json")
        #expect(result.status == 0, "\(result.stderr)")
        let history = try #require(try parseJSON(result.stdout) as? [String: Any])
        #expect(history["port"] as? Int == port)
        #expect(history["appeared_after"] as? String == times[0])
        #expect(history["first_seen"] as? String == times[1])
        let intervals = try #require(history["intervals"] as? [[String: Any]])
        try #require(intervals.count == 2)

        let pids = intervals.map { ($0["processes"] as? [[String: Any]] ?? []).compactMap { $0["pid"] as? Int } }
        #expect(pids == [[Int(first.sockets[0].pid)], [Int(second.sockets[0].pid)]])
        #expect(intervals[0]["first_seen"] as? String == times[1])
        #expect(intervals[0]["last_seen"] as? String == times[1])
        #expect(intervals[0]["gone_by"] as? String == times[2])
        #expect(intervals[0]["listening"] as? Bool == false)
        #expect(intervals[1]["first_seen"] as? String == times[2])
        #expect(intervals[1]["listening"] as? Bool == true)
        for interval in intervals {
            #expect(interval["protocol"] as? String == "tcp")
            #expect(interval["address"] as? String == "127.0.0.1")
            let process = try #require((interval["processes"] as? [[String: Any]])?.first)
            #expect(process["user"] as? String == "root")
            #expect((process["cmdline"] as? String)?.contains("listeners.py") == true)
            #expect((process["exe"] as? String)?.contains("python") == true)
        }

        let table = try portaudit("history", "\(port)/tcp", "--db", db, "--utc")
        #expect(table.status == 0)
        #expect(table.stdout.contains("Appeared between"))
        #expect(table.stdout.contains("pid \(first.sockets[0].pid)"))
        #expect(table.stdout.contains("pid \(second.sockets[0].pid)"))
        #expect(table.stdout.split(separator: "\n").allSatisfy { $0.count <= 80 })
    }

    @Test(arguments: ["netlink", "procfs"])
    func nowAgreesWithSS(enumeration: String) throws {
        let fixture = try Listeners(["--socket", "tcp4,fork=3", "--socket", "udp6,fork=2", "--socket", "tcp6,reuseport=3",
                                     "--socket", "udp4,reuseport=2", "--socket", "tcp6", "--socket", "udp4", "--noise", "3"])
        defer { fixture.stop() }
        // ss reads only the namespace it runs in.
        let ours = try portaudit("now", "--format", "json", "--enumerate", enumeration, "--netns", "host")
        let theirs = try run("/usr/bin/env", ["ss", "-H", "-tulnp"])
        try #require(ours.status == 0, "\(ours.stderr)")
        try #require(theirs.status == 0)

        let listeners = try #require(try parseJSON(ours.stdout) as? [[String: Any]])
        let mine = listeners.map { listener -> String in
            let pids = (listener["processes"] as? [[String: Any]] ?? []).compactMap { $0["pid"] as? Int }.sorted()
            let interface = (listener["interface"] as? String).flatMap { $0.isEmpty ? nil : $0 }
            return SSLine.key(proto: listener["protocol"] as! String, address: listener["address"] as! String,
                              interface: interface, port: listener["port"] as! Int, pids: pids)
        }.sorted()
        let expected = theirs.stdout.split(separator: "\n").compactMap(SSLine.parse).sorted()
        #expect(mine == expected)

        // Every socket of the fixture is there with all of its holders.
        for socket in fixture.sockets {
            let key = SSLine.key(proto: socket.proto, address: socket.addr, interface: nil, port: socket.port,
                                 pids: socket.pids.map(Int.init).sorted())
            #expect(mine.contains(key), "missing \(key)")
        }
        #expect(mine.count >= fixture.sockets.count)
    }

    @Test func unchangedMachineAddsOnlySnapshotRows() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let db = directory.file("store.db")
        let fixture = try Listeners(["--socket", "tcp4,fork=2", "--socket", "udp6", "--socket", "tcp6,reuseport=2"])
        defer { fixture.stop() }

        func counts() throws -> [Int] {
            try DatabaseQueue(path: db).read { db in
                try ["snapshot", "listener", "listener_interval", "holding", "process"].map {
                    try Int.fetchOne(db, sql: "SELECT count(*) FROM \($0)") ?? -1
                }
            }
        }
        // The first snapshot records everything; the second settles holders whose
        // readability differs between runs (none expected, but it is not this test's point).
        for _ in 0..<2 { try #require(try portaudit("snapshot", "--db", db, "--quiet").status == 0) }
        let before = try counts()
        #expect(before[2] >= 4 && before[3] >= 6)
        for _ in 0..<15 { try #require(try portaudit("snapshot", "--db", db, "--quiet").status == 0) }
        let after = try counts()
        #expect(after[0] == before[0] + 15)
        #expect(Array(after[1...]) == Array(before[1...]))
        let opened = try DatabaseQueue(path: db).read { db in
            try Int.fetchOne(db, sql: "SELECT sum(opened + closed + changed) FROM snapshot WHERE id > 2")
        }
        #expect(opened == 0)
    }

    /// Usage is stored as changes: listeners with steady connections add no row per snapshot.
    @Test func steadyConnectionsAddNoUsageRows() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let db = directory.file("store.db")
        let fixture = try Listeners(["--socket", "tcp4", "--socket", "tcp6,reuseport=2"])
        defer { fixture.stop() }
        let tcp4 = try #require(fixture.sockets.first { $0.family == "inet" })
        let clients = try (0..<2).map { _ in try connectLoopback(port: tcp4.port) }
        defer { clients.forEach { close($0) } }
        let ports = Set(fixture.sockets.map(\.port))

        func usageRows() throws -> [String] {
            try DatabaseQueue(path: db).read { db in
                try Row.fetchAll(db, sql: """
                    SELECT l.port, u.snapshot_id, u.connections, u.accept_queue FROM listener_usage u
                    JOIN listener l ON l.id = u.listener_id ORDER BY l.port, u.snapshot_id
                    """).filter { ports.contains($0[0]) }.map { "\($0[0] as Int) \($0[1] as Int) \($0[2] as Int) \($0[3] as Int)" }
            }
        }
        try #require(try portaudit("snapshot", "--db", db, "--quiet").status == 0)
        // Only the listener with connections has a row; the others are 0 and 0, which is no row.
        #expect(try usageRows() == ["\(tcp4.port) 1 2 2"])
        for _ in 0..<10 { try #require(try portaudit("snapshot", "--db", db, "--quiet").status == 0) }
        #expect(try usageRows() == ["\(tcp4.port) 1 2 2"])
    }

    @Test func nonRootUserSeesForeignSocketsAsUnattributed() throws {
        guard geteuid() == 0 else { return }
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        chmod(directory.path, 0o777)
        let db = directory.file("store.db")
        let fixture = try Listeners("tcp4")
        defer { fixture.stop() }
        let port = fixture.sockets[0].port

        let snapshot = try run("/usr/sbin/runuser", ["-u", "nobody", "--", portauditBinary, "snapshot", "--db", db])
        #expect(snapshot.status == 0, "\(snapshot.stderr)")
        let history = try run("/usr/sbin/runuser", ["-u", "nobody", "--", portauditBinary, "history", "\(port)", "--db", db, "--format", "json"])
        #expect(history.status == 0, "\(history.stderr)")
        let json = try #require(try parseJSON(history.stdout) as? [String: Any])
        let interval = try #require((json["intervals"] as? [[String: Any]])?.first)
        #expect((interval["processes"] as? [Any])?.isEmpty == true)
        let unattributed = try #require((interval["unattributed"] as? [[String: Any]])?.first)
        #expect(unattributed["reason"] as? String == "permission-denied")
        #expect(unattributed["socket_uid"] as? Int == 0)
        let asRoot = try DatabaseQueue(path: db).read { db in try Int.fetchOne(db, sql: "SELECT as_root FROM snapshot") }
        #expect(asRoot == 0)
    }
}

/// One line of `ss -H -tulnp`, reduced to what both tools must agree on.
enum SSLine {
    static func key(proto: String, address: String, interface: String?, port: Int, pids: [Int]) -> String {
        let any = ["0.0.0.0", "::", "*"].contains(address)
        return "\(proto) \(any ? "*" : address)\(interface.map { "%" + $0 } ?? ""):\(port) \(pids)"
    }

    static func parse(_ line: Substring) -> String? {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 5, let colon = fields[4].lastIndex(of: ":"), let port = Int(fields[4][fields[4].index(after: colon)...]) else { return nil }
        var host = String(fields[4][..<colon])
        var interface: String?
        if let percent = host.firstIndex(of: "%") {
            interface = String(host[host.index(after: percent)...])
            host = String(host[..<percent])
        }
        host = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        let users = fields.count > 6 ? fields[6...].joined(separator: " ") : ""
        let pids = users.components(separatedBy: "pid=").dropFirst().compactMap { Int($0.prefix { $0.isNumber }) }.sorted()
        return key(proto: String(fields[0]), address: host, interface: interface, port: port, pids: pids)
    }
}
