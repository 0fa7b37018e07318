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
        #expect(table.stdout.contains("pid \(first.sockets[0].pid) python3 (root, started "), "\(table.stdout)")
        #expect(table.stdout.contains("pid \(second.sockets[0].pid)"))
        #expect(table.stdout.split(separator: "\n").allSatisfy { $0.count <= 80 })
    }

    /// The kernel threads of this machine are not read, and nothing else is skipped: each
    /// skipped process (still there) has PF_KTHREAD in its stat.
    @Test func kernelThreadsAreSkippedByTheWalk() throws {
        let proc = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        defer { close(proc) }
        let candidates = DescriptorWalk.kernelThreadCandidates(procFD: proc)
        let walk = DescriptorWalk.walk(procFD: proc, pids: DescriptorWalk.allPIDs(procFD: proc), wanted: [],
                                       skippingKernelThreadsAmong: candidates, threads: 2)
        /// Field 9 of stat, the kernel's PF_* flags; nil once the process has exited.
        func flags(_ pid: Int32) -> UInt64? {
            guard let text = ProcFiles.readString("/proc/\(pid)/stat"), let close = text.lastIndex(of: ")") else { return nil }
            let fields = text[text.index(after: close)...].split(separator: " ")
            return fields.count > 6 ? UInt64(fields[6]) : nil
        }
        let pfKthread: UInt64 = 0x0020_0000
        // Each read once: a kworker may exit between two reads.
        let skipped = walk.skippedPIDs.compactMap { pid in flags(pid).map { (pid: pid, flags: $0) } }
        #expect(skipped.allSatisfy { $0.flags & pfKthread != 0 }, "\(skipped.filter { $0.flags & pfKthread == 0 })")
        #expect(!walk.skippedPIDs.contains(getpid()) && !walk.skippedPIDs.contains(1))
        // Where pid 2 is kthreadd (no pid namespace hides it), it and its children are skipped.
        if let kthreadd = flags(2), kthreadd & pfKthread != 0 {
            #expect(walk.skippedPIDs.contains(2) && walk.skippedPIDs.count > 1)
        }
    }

    /// A process among the candidates that has an address space is read like any other: two
    /// real processes share one listener, both given as possible kernel threads.
    @Test func candidatesWithAnAddressSpaceAreRead() throws {
        let fixture = try Listeners(["--socket", "tcp4,fork=2"])
        defer { fixture.stop() }
        let socket = try #require(fixture.sockets.first)
        try #require(socket.pids.count == 2)
        let proc = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        defer { close(proc) }
        let walk = DescriptorWalk.walk(procFD: proc, pids: socket.pids, wanted: [socket.inode],
                                       skippingKernelThreadsAmong: Set(socket.pids), threads: 1)
        #expect(walk.holders[socket.inode, default: []].map(\.pid).sorted() == socket.pids.sorted())
        #expect(walk.skippedPIDs.isEmpty)
    }

    /// A process whose fd directory can be listed but whose links cannot be read (pid 1 on
    /// these machines, even for root) is reported as denied, not as holding nothing.
    @Test func processWithUnreadableLinksIsDenied() throws {
        guard let first = try? FileManager.default.contentsOfDirectory(atPath: "/proc/1/fd").first,
              ProcFiles.readLink("/proc/1/fd/\(first)") == nil, errno == EACCES else { return }
        let proc = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        defer { close(proc) }
        let walk = DescriptorWalk.walk(procFD: proc, pids: [1, getpid()], wanted: [], threads: 1)
        #expect(walk.deniedPIDs == [1])
        // Given as a possible kernel thread, its refused `exe` (not a missing one) says the same.
        guard ProcFiles.readLink("/proc/1/exe") == nil, errno == EACCES else { return }
        let asCandidate = DescriptorWalk.walk(procFD: proc, pids: [1], wanted: [], skippingKernelThreadsAmong: [1], threads: 1)
        #expect(asCandidate.deniedPIDs == [1] && asCandidate.skippedPIDs.isEmpty)
    }

    @Test(arguments: ["netlink", "netlink-by-family", "procfs"])
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
        expectEverySocket(of: fixture, in: mine)
        #expect(mine.count >= fixture.sockets.count)
    }

    /// What the store says listens now (its open intervals), one line per socket as ss prints it.
    private func storedListenerLines(_ db: String) throws -> [String] {
        let rows = try DatabaseQueue(path: db).read { db in
            try Row.fetchAll(db, sql: """
                SELECT l.protocol, l.address, l.interface, l.port, h.inode, p.pid
                FROM listener_interval i JOIN listener l ON l.id = i.listener_id
                JOIN holding h ON h.interval_id = i.id LEFT JOIN process p ON p.id = h.process_id
                WHERE i.last_snapshot_id IS NULL
                """)
        }
        var sockets: [Int64: (proto: String, address: String, interface: String, port: Int, pids: [Int])] = [:]
        for row in rows {
            let inode: Int64 = row["inode"]
            var entry = sockets[inode] ?? (row["protocol"], row["address"], row["interface"], row["port"], [])
            if let pid = row["pid"] as Int? { entry.pids.append(pid) }
            sockets[inode] = entry
        }
        return sockets.values.map {
            SSLine.key(proto: $0.proto, address: $0.address, interface: $0.interface.isEmpty ? nil : $0.interface,
                       port: $0.port, pids: $0.pids.sorted())
        }.sorted()
    }

    private func fullWalks(_ db: String) throws -> [Bool] {
        try DatabaseQueue(path: db).read { db in
            try Bool.fetchAll(db, sql: "SELECT full_walk FROM snapshot ORDER BY id")
        }
    }

    /// A snapshot stores what ss sees, whether it walked every process (cache cold) or
    /// confirmed the holders of the previous snapshot (cache warm), on both enumeration paths.
    @Test(arguments: ["netlink", "netlink-by-family", "procfs"], ["cold", "warm"])
    func snapshotAgreesWithSS(enumeration: String, cache: String) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let db = directory.file("store.db")
        let fixture = try Listeners(["--socket", "tcp4,fork=3", "--socket", "udp6,fork=2", "--socket", "tcp6,reuseport=3",
                                     "--socket", "udp4,reuseport=2", "--socket", "tcp6", "--socket", "udp4", "--noise", "3"])
        defer { fixture.stop() }

        try #require(try portaudit("snapshot", "--db", db, "--quiet", "--enumerate", enumeration).status == 0)
        let second = cache == "cold"
            ? try portaudit("snapshot", "--db", db, "--quiet", "--full-walk", "--enumerate", enumeration)
            : try portaudit("snapshot", "--db", db, "--quiet", "--enumerate", enumeration)
        try #require(second.status == 0, "\(second.stderr)")
        let theirs = try run("/usr/bin/env", ["ss", "-H", "-tulnp"])
        try #require(theirs.status == 0)
        // The warm snapshot really confirmed instead of walking, and the cold one walked.
        #expect(try fullWalks(db) == [true, cache == "cold"])

        let mine = try storedListenerLines(db)
        let expected = theirs.stdout.split(separator: "\n").compactMap(SSLine.parse).sorted()
        #expect(mine == expected)
        expectEverySocket(of: fixture, in: mine)
    }

    /// Every socket of the fixture is in `lines` with all of its holders.
    private func expectEverySocket(of fixture: Listeners, in lines: [String]) {
        for socket in fixture.sockets {
            let key = SSLine.key(proto: socket.proto, address: socket.addr, interface: nil, port: socket.port,
                                 pids: socket.pids.map(Int.init).sorted())
            #expect(lines.contains(key), "missing \(key)")
        }
    }

    /// A worker forked after the store learnt a socket's holders is a holder the confirmation
    /// cannot see; the README promises it is recorded by the 10th snapshot after the last full
    /// walk (HolderCachePolicy.default), and the snapshots in between must not lose the others.
    @Test func forkedHolderOfKnownSocketIsRecordedWithinGuarantee() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let db = directory.file("store.db")
        let fixture = try Listeners("tcp4,fork=2")
        defer { fixture.stop() }
        let socket = fixture.sockets[0]
        let port = socket.port
        let known = socket.pids.map(Int.init).sorted()

        func storedPIDs() throws -> [Int] {
            let line = try storedListenerLines(db).first { $0.hasPrefix("tcp 127.0.0.1:\(port) ") }
            let key = try #require(line)
            return key.split(separator: "[").last!.dropLast().split(separator: ",")
                .compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        }

        try #require(try portaudit("snapshot", "--db", db, "--quiet").status == 0)
        try #require(try portaudit("snapshot", "--db", db, "--quiet").status == 0)
        try #require(try fullWalks(db) == [true, false])
        #expect(try storedPIDs() == known)

        // The unit forks one more worker sharing the socket; wait until the kernel shows it.
        kill(socket.pid, SIGUSR1)
        let deadline = Date().addingTimeInterval(30)
        var now: [Int] = []
        repeat {
            let ss = try run("/usr/bin/env", ["ss", "-H", "-tulnp"])
            let line = ss.stdout.split(separator: "\n").compactMap(SSLine.parse).first { $0.hasPrefix("tcp 127.0.0.1:\(port) ") } ?? ""
            now = line.split(separator: "[").last.map { $0.dropLast().split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } } ?? []
            if now.count == known.count + 1 { break }
            usleep(20_000)
        } while Date() < deadline
        try #require(now.count == known.count + 1, "the forked worker did not appear: \(now)")
        let forked = try #require(Set(now).subtracting(known).first)

        // Snapshots 3… up to the 10th after the full walk of snapshot 1 (that is, snapshot 11).
        var recordedBy: Int?
        for number in 3...11 {
            try #require(try portaudit("snapshot", "--db", db, "--quiet").status == 0)
            let pids = try storedPIDs()
            #expect(Set(known).isSubset(of: pids), "snapshot \(number) lost a known holder: \(pids)")
            if pids.contains(forked) { recordedBy = number; break }
        }
        let by = try #require(recordedBy, "the forked holder was not recorded within 10 snapshots of the last full walk")
        #expect(by <= 11)
        // It was found by a full walk, the one the policy makes due.
        #expect(try fullWalks(db).last == true)
        #expect(try storedPIDs() == now.sorted())
    }

    /// The snapshot command line has a fast path beside ArgumentParser; both spellings of
    /// each option reach the store, and whatever the fast path does not take still gets
    /// ArgumentParser's one-line error.
    @Test func snapshotOptionsWorkInEverySpelling() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let db = directory.file("store.db")
        #expect(try portaudit("snapshot", "--db=\(db)", "-q", "--lock-timeout=5", "--enumerate=procfs", "--full-walk").status == 0)
        let verbose = try portaudit("snapshot", "--db", db, "--lock-timeout", "5", "--enumerate", "netlink")
        #expect(verbose.status == 0)
        #expect(verbose.stdout.hasPrefix("snapshot 2: "))
        let rows = try DatabaseQueue(path: db).read { db in
            try Row.fetchAll(db, sql: "SELECT source, full_walk FROM snapshot ORDER BY id").map { [$0[0] as String, String($0[1] as Int)] }
        }
        #expect(rows == [["procfs", "1"], ["netlink", "0"]])
        for bad in [["snapshot", "--db", db, "--bogus"], ["snapshot", "--db=", "-q"], ["snapshot", "--enumerate", "kernel"]] {
            let result = try run(portauditBinary, bad)
            #expect(result.status != 0, "\(bad)")
            #expect(result.stderr.hasPrefix("portaudit: ") && result.stderr.split(separator: "\n").count == 1, "\(bad): \(result.stderr)")
        }
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
    /// The connections are counted alike from the one TCP request, from the per-family ones
    /// and from /proc/net.
    @Test(arguments: ["netlink", "netlink-by-family", "procfs"])
    func steadyConnectionsAddNoUsageRows(enumeration: String) throws {
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
        try #require(try portaudit("snapshot", "--db", db, "--quiet", "--enumerate", enumeration).status == 0)
        // Only the listener with connections has a row; the others are 0 and 0, which is no row.
        #expect(try usageRows() == ["\(tcp4.port) 1 2 2"])
        for _ in 0..<10 { try #require(try portaudit("snapshot", "--db", db, "--quiet", "--enumerate", enumeration).status == 0) }
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
