import Foundation
import GRDB
import Testing
@testable import PortAuditKit

/// A network namespace made with `ip netns add`, loopback up; `remove()` deletes it.
final class NetworkNamespaceFixture {
    let name: String
    let inode: UInt64

    init() throws {
        name = "portaudit-test-\(UUID().uuidString.prefix(8).lowercased())"
        let added = try run("/usr/bin/env", ["ip", "netns", "add", name])
        guard added.status == 0 else { throw TestFailure("ip netns add \(name): \(added.stderr)") }
        let up = try run("/usr/bin/env", ["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"])
        var info = stat()
        guard up.status == 0, stat("/run/netns/\(name)", &info) == 0 else {
            _ = try? run("/usr/bin/env", ["ip", "netns", "delete", name])
            throw TestFailure("cannot set up namespace \(name): \(up.stderr)")
        }
        inode = UInt64(info.st_ino)
    }

    /// Listeners bound inside the namespace.
    func listeners(_ specs: String...) throws -> Listeners {
        try Listeners(specs.flatMap { ["--socket", $0] }, launcher: ["ip", "netns", "exec", name])
    }

    func remove() {
        _ = try? run("/usr/bin/env", ["ip", "netns", "delete", name])
    }

    deinit { remove() }
}

extension LiveSystemTests {
    /// The same port in the host and in a namespace: two listeners, each with its namespace,
    /// in `now`, in the store and in `history`; a deleted namespace closes its listeners.
    @Test func listenersOfEveryNetworkNamespaceAreSeenApart() throws {
        guard geteuid() == 0 else { return }
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let db = directory.file("store.db")
        let namespace = try NetworkNamespaceFixture()
        defer { namespace.remove() }
        let port = try freePort()
        let host = try Listeners("tcp4:\(port)")
        defer { host.stop() }
        let inside = try namespace.listeners("tcp4:\(port)", "udp6:\(port)")
        defer { inside.stop() }
        let hostPID = Int(host.sockets[0].pid)
        let insidePIDs = Set(inside.sockets.map { Int($0.pid) })

        // now, every namespace (the default)
        let now = try portaudit("now", "--format", "json")
        try #require(now.status == 0, "\(now.stderr)")
        let seen = try #require(try parseJSON(now.stdout) as? [[String: Any]]).filter { $0["port"] as? Int == port }
        let pidsOf = { (entry: [String: Any]) in (entry["processes"] as? [[String: Any]] ?? []).compactMap { $0["pid"] as? Int } }
        let hostEntries = seen.filter { $0["netns_is_host"] as? Bool == true }
        let insideEntries = seen.filter { $0["netns_name"] as? String == namespace.name }
        #expect(seen.count == 3)
        #expect(hostEntries.count == 1 && hostEntries.allSatisfy { pidsOf($0) == [hostPID] && $0["protocol"] as? String == "tcp" })
        #expect(insideEntries.count == 2)
        for entry in insideEntries {
            #expect((entry["netns"] as? NSNumber)?.uint64Value == namespace.inode)
            #expect(entry["netns_is_host"] as? Bool == false)
            #expect(pidsOf(entry).count == 1 && insidePIDs.contains(pidsOf(entry)[0]))
        }
        #expect(Set(insideEntries.compactMap { $0["protocol"] as? String }) == ["tcp", "udp"])

        // now --netns chooses
        func nowPorts(_ netns: String) throws -> [[String: Any]] {
            let result = try portaudit("now", "--format", "json", "--netns", netns)
            try #require(result.status == 0, "\(result.stderr)")
            return try #require(try parseJSON(result.stdout) as? [[String: Any]]).filter { $0["port"] as? Int == port }
        }
        #expect(try nowPorts("host").map(pidsOf) == [[hostPID]])
        #expect(try nowPorts(namespace.name).count == 2)
        #expect(try nowPorts(String(namespace.inode)).allSatisfy { $0["netns_name"] as? String == namespace.name })
        #expect(try nowPorts(String(namespace.inode)).count == 2)
        // The /proc fallback reads the namespace's own tables too (/proc/thread-self/net).
        let procfs = try portaudit("now", "--format", "json", "--enumerate", "procfs", "--netns", namespace.name)
        try #require(procfs.status == 0, "\(procfs.stderr)")
        let procfsSeen = try #require(try parseJSON(procfs.stdout) as? [[String: Any]]).filter { $0["port"] as? Int == port }
        #expect(procfsSeen.count == 2 && Set(procfsSeen.flatMap(pidsOf)) == insidePIDs)
        let table = try portaudit("now", "--wide")
        #expect(table.stdout.split(separator: "\n").first?.hasPrefix("NETNS") == true)
        #expect(table.stdout.split(separator: "\n").contains { $0.hasPrefix(namespace.name) && $0.contains(":\(port)") })
        let unknown = try portaudit("now", "--netns", "portaudit-no-such-namespace")
        #expect(unknown.status != 0)
        #expect(unknown.stderr.hasPrefix("portaudit: ") && unknown.stderr.split(separator: "\n").count == 1)

        // snapshot and history
        let snapshot = try portaudit("snapshot", "--db", db)
        try #require(snapshot.status == 0, "\(snapshot.stderr)")
        #expect(snapshot.stdout.range(of: #"in \d+ network namespaces"#, options: .regularExpression) != nil)
        let stored = try DatabaseQueue(path: db).read { db in
            try Row.fetchAll(db, sql: """
                SELECT n.inode, n.name, l.protocol, n.id = (SELECT netns_id FROM snapshot) AS is_host
                FROM listener l JOIN netns n ON n.id = l.netns_id WHERE l.port = ? ORDER BY is_host DESC, l.protocol
                """, arguments: [port])
        }
        #expect(stored.count == 3)
        #expect(stored.map { $0["is_host"] as Bool } == [true, false, false])
        #expect(stored.dropFirst().allSatisfy { UInt64(bitPattern: $0["inode"] as Int64) == namespace.inode && $0["name"] as String? == namespace.name })

        func history(_ extra: String...) throws -> [[String: Any]] {
            let result = try portaudit(["history", "\(port)", "--db", db, "--format", "json"] + extra)
            try #require(result.status == 0, "\(result.stderr)")
            return try #require((try parseJSON(result.stdout) as? [String: Any])?["intervals"] as? [[String: Any]])
        }
        let all = try history()
        #expect(all.count == 3)
        #expect(all.filter { $0["netns_is_host"] as? Bool == true }.map(pidsOf) == [[hostPID]])
        #expect(Set(all.filter { $0["netns_name"] as? String == namespace.name }.flatMap(pidsOf)) == insidePIDs)
        #expect(try history("--netns", "host").map(pidsOf) == [[hostPID]])
        #expect(try history("--netns", namespace.name).count == 2)
        #expect(try history("--netns", String(namespace.inode)).count == 2)
        let text = try portaudit("history", "\(port)", "--db", db, "--utc")
        #expect(text.stdout.contains("in netns \(namespace.name)"))
        let bogus = try portaudit("history", "\(port)", "--db", db, "--netns", "portaudit-no-such-namespace")
        #expect(bogus.status != 0)
        #expect(bogus.stderr.hasPrefix("portaudit: ") && bogus.stderr.split(separator: "\n").count == 1)

        // process: the listeners' holders (all python3) are told apart by namespace, and --netns chooses.
        func held(_ extra: String...) throws -> [[String: Any]] {
            let result = try portaudit(["process", "python3", "--db", db, "--format", "json"] + extra)
            try #require(result.status == 0, "\(result.stderr)")
            return try #require(try parseJSON(result.stdout) as? [[String: Any]]).filter { $0["port"] as? Int == port }
        }
        let heldEverywhere = try held()
        #expect(heldEverywhere.count == 3)
        #expect(heldEverywhere.filter { $0["netns_is_host"] as? Bool == true }.compactMap { $0["pid"] as? Int } == [hostPID])
        #expect(Set(heldEverywhere.filter { $0["netns_name"] as? String == namespace.name }.compactMap { $0["pid"] as? Int }) == insidePIDs)
        #expect(try held("--netns", "host").compactMap { $0["pid"] as? Int } == [hostPID])
        #expect(Set(try held("--netns", String(namespace.inode)).compactMap { $0["pid"] as? Int }) == insidePIDs)
        let processText = try portaudit("process", "python3", "--db", db, "--utc", "--wide")
        #expect(processText.stdout.split(separator: "\n").contains { $0.contains(":\(port) in netns \(namespace.name)") }, "\(processText.stdout)")
        let processBogus = try portaudit("process", "python3", "--db", db, "--netns", "portaudit-no-such-namespace")
        #expect(processBogus.status != 0 && processBogus.stderr.hasPrefix("portaudit: "))

        // The namespace goes away: its listeners close, the host's stays open.
        inside.stop()
        namespace.remove()
        try #require(try portaudit("snapshot", "--db", db, "--quiet").status == 0)
        let after = try history()
        #expect(after.filter { $0["netns_is_host"] as? Bool == true }.allSatisfy { $0["listening"] as? Bool == true })
        let closed = after.filter { $0["netns_name"] as? String == namespace.name }
        #expect(closed.count == 2 && closed.allSatisfy { $0["listening"] as? Bool == false && $0["ended"] as? String == "closed" })
    }
}

extension LiveSystemTests {
    /// A snapshot that cannot look into other namespaces (not root) leaves their listeners
    /// open: not seen is not closed. The next root snapshot still sees them unchanged.
    @Test func snapshotWithoutRootLeavesOtherNamespacesAlone() throws {
        guard geteuid() == 0 else { return }
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        chmod(directory.path, 0o777)
        let db = directory.file("store.db")
        let namespace = try NetworkNamespaceFixture()
        defer { namespace.remove() }
        let inside = try namespace.listeners("tcp4")
        defer { inside.stop() }
        let port = inside.sockets[0].port

        // The store belongs to nobody, as a non-root user's store would; root can write it too.
        let created = try run("/usr/sbin/runuser", ["-u", "nobody", "--", portauditBinary, "snapshot", "--db", db, "--quiet"])
        try #require(created.status == 0, "\(created.stderr)")
        try #require(try portaudit("snapshot", "--db", db, "--quiet").status == 0)
        let asNobody = try run("/usr/sbin/runuser", ["-u", "nobody", "--", portauditBinary, "snapshot", "--db", db])
        try #require(asNobody.status == 0, "\(asNobody.stderr)")
        #expect(asNobody.stderr.contains("only portaudit's own network namespace was read"))
        try #require(try portaudit("snapshot", "--db", db, "--quiet").status == 0)

        let result = try portaudit("history", "\(port)", "--db", db, "--format", "json", "--netns", namespace.name)
        try #require(result.status == 0, "\(result.stderr)")
        let intervals = try #require((try parseJSON(result.stdout) as? [String: Any])?["intervals"] as? [[String: Any]])
        #expect(intervals.count == 1)
        #expect(intervals.first?["listening"] as? Bool == true)
        let closed = try DatabaseQueue(path: db).read { db in
            try Int.fetchOne(db, sql: "SELECT sum(closed) FROM snapshot")
        }
        #expect(closed == 0)
    }
}


