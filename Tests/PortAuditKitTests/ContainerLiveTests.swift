import Foundation
import GRDB
import Testing
@testable import PortAuditKit

extension LiveSystemTests {
    /// A listener moved into a real cgroup laid out as LXC names its containers
    /// (lxc.payload.NAME) is shown and stored with that container. Only the name of the
    /// cgroup is borrowed from LXC; the cgroup, the process and its socket are real.
    @Test func holderInAContainerCgroupIsShownWithItsContainer() throws {
        guard geteuid() == 0 else { return }
        // A v1 hierarchy, the v2 one of a hybrid host, or a v2-only host's root.
        let candidates = ["/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        guard let hierarchy = candidates.first(where: {
            FileManager.default.fileExists(atPath: "\($0)/cgroup.procs") && FileManager.default.isWritableFile(atPath: $0)
        }) else { return }  // no writable cgroup hierarchy: nothing to move a process into
        let name = "portaudit-test-\(UUID().uuidString.prefix(8).lowercased())"
        let group = "\(hierarchy)/lxc.payload.\(name)"
        try #require(mkdir(group, 0o755) == 0, "cannot create \(group)")
        let listener = try Listeners("tcp4")
        defer {
            listener.stop()
            // The group can be removed once its processes have exited.
            let deadline = Date().addingTimeInterval(30)
            while rmdir(group) != 0 && errno == EBUSY && Date() < deadline { usleep(20_000) }
        }
        let socket = listener.sockets[0]
        for pid in socket.pids {
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: "\(group)/cgroup.procs"))
            try handle.write(contentsOf: Data("\(pid)\n".utf8))
            try handle.close()
        }
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let db = directory.file("store.db")

        let now = try portaudit("now", "--format", "json", "--netns", "host")
        try #require(now.status == 0, "\(now.stderr)")
        let entry = try #require(try (parseJSON(now.stdout) as? [[String: Any]])?.first { $0["port"] as? Int == socket.port })
        let holder = try #require((entry["processes"] as? [[String: Any]])?.first)
        #expect(holder["container"] as? [String: String] == ["runtime": "lxc", "id": name])
        let table = try portaudit("now", "--wide", "--netns", "host")
        #expect(table.stdout.split(separator: "\n").contains { $0.contains(":\(socket.port)") && $0.contains("[lxc \(name)]") })

        try #require(try portaudit("snapshot", "--db", db, "--quiet").status == 0)
        let stored = try DatabaseQueue(path: db).read { db in
            try Row.fetchOne(db, sql: "SELECT container_runtime, container_id FROM process WHERE pid = ?", arguments: [socket.pid])
        }
        #expect(stored?["container_runtime"] as String? == "lxc")
        #expect(stored?["container_id"] as String? == name)
        let history = try portaudit("history", "\(socket.port)", "--db", db, "--format", "json")
        let interval = try #require(((try parseJSON(history.stdout) as? [String: Any])?["intervals"] as? [[String: Any]])?.first)
        #expect((interval["processes"] as? [[String: Any]])?.first?["container"] as? [String: String] == ["runtime": "lxc", "id": name])
        let text = try portaudit("history", "\(socket.port)", "--db", db, "--wide")
        #expect(text.stdout.contains("[lxc \(name)]"))
        // A process outside any container has none.
        let others = try DatabaseQueue(path: db).read { db in
            try Int.fetchOne(db, sql: "SELECT count(*) FROM process WHERE pid != ? AND container_id IS NOT NULL", arguments: [socket.pid])
        }
        #expect(others == 0)
    }
}
