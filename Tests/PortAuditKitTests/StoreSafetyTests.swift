import Foundation
import GRDB
import Testing
@testable import PortAuditKit

/// Least privilege and hostile or broken file systems: group access, planted symbolic
/// links, read-only mounts, corrupted files.
@Suite struct StoreSafetyTests {
    static let isRoot = geteuid() == 0

    static func mode(_ path: String) throws -> Int {
        try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int ?? -1
    }

    static func groupID(_ path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.groupOwnerAccountID] as? NSNumber)?.intValue ?? -1
    }

    /// A directory others can traverse, as /var/lib is: only the store's own directory
    /// decides who gets in.
    static func openDirectory() throws -> TemporaryDirectory {
        let directory = try TemporaryDirectory()
        chmod(directory.path, 0o755)
        return directory
    }

    @Test(.enabled(if: isRoot)) func storeIsOwnerOnlyUnlessAGroupIsGranted() throws {
        let directory = try Self.openDirectory()
        defer { directory.remove() }
        let privateDB = directory.file("private/store.db")
        try #require(try portaudit("snapshot", "--db", privateDB, "--quiet").status == 0)
        #expect(try Self.mode(directory.file("private")) == 0o700)
        for file in [privateDB, privateDB + "-wal", privateDB + "-shm"] { #expect(try Self.mode(file) == 0o600, "\(file)") }
        let denied = try run("/usr/sbin/runuser", ["-u", "nobody", "--", portauditBinary, "history", "22", "--db", privateDB])
        #expect(denied.status != 0)
        #expect(denied.stderr.hasPrefix("portaudit: "))

        let sharedDB = directory.file("shared/store.db")
        let granted = try portaudit("snapshot", "--db", sharedDB, "--quiet", "--group", "nogroup")
        try #require(granted.status == 0, "\(granted.stderr)")
        let nogroup = Int(getgrnam("nogroup").pointee.gr_gid)
        #expect(try Self.mode(directory.file("shared")) == 0o750)
        #expect(try Self.groupID(directory.file("shared")) == nogroup)
        for file in [sharedDB, sharedDB + "-wal", sharedDB + "-shm"] {
            #expect(try Self.mode(file) == 0o640, "\(file)")
            #expect(try Self.groupID(file) == nogroup, "\(file)")
        }
        // A member of the group reads it, though it may write neither the store nor its directory.
        let reader = try run("/usr/sbin/runuser", ["-u", "nobody", "-g", "nogroup", "--", portauditBinary, "status", "--db", sharedDB])
        #expect(reader.status == 0, "\(reader.stderr)")
        #expect(reader.stdout.contains("Snapshots:      1"))
        let writer = try run("/usr/sbin/runuser", ["-u", "nobody", "-g", "nogroup", "--", portauditBinary, "snapshot", "--db", sharedDB])
        #expect(writer.status != 0)
        // Later runs keep the modes (SQLite gives its files the store's own mode).
        try #require(try portaudit("snapshot", "--db", sharedDB, "--quiet").status == 0)
        #expect(try Self.mode(sharedDB) == 0o640)
        let unknown = try portaudit("snapshot", "--db", sharedDB, "--group", "no-such-group-x")
        #expect(unknown.status != 0)
        #expect(unknown.stderr.contains("no group named no-such-group-x"))
        // Refused before anything is created.
        let neverDB = directory.file("never/store.db")
        #expect(try portaudit("snapshot", "--db", neverDB, "--group", "no-such-group-x").status != 0)
        #expect(!FileManager.default.fileExists(atPath: directory.file("never")))
    }

    /// A directory that holds more than the store (/tmp, a home) keeps its own mode and group:
    /// only the store's files are granted, with a note when the group cannot get through.
    @Test(.enabled(if: isRoot)) func aGroupGrantLeavesADirectoryWithOtherFilesAlone() throws {
        let directory = try Self.openDirectory()
        defer { directory.remove() }
        let nogroup = Int(getgrnam("nogroup").pointee.gr_gid)
        for (name, mode) in [("sticky", mode_t(0o1777)), ("closed", mode_t(0o700))] {
            let shared = directory.file(name)
            try FileManager.default.createDirectory(atPath: shared, withIntermediateDirectories: false)
            try #require(chmod(shared, mode) == 0)
            try Data("someone else's".utf8).write(to: URL(fileURLWithPath: directory.file("\(name)/other.txt")))
            let db = directory.file("\(name)/store.db")
            let granted = try portaudit("snapshot", "--db", db, "--group", "nogroup")
            try #require(granted.status == 0, "\(granted.stderr)")
            #expect(try Self.mode(shared) == Int(mode), "\(name)")
            #expect(try Self.groupID(shared) == 0, "\(name)")
            for file in [db, db + "-wal", db + "-shm"] {
                #expect(try Self.mode(file) == 0o640, "\(file)")
                #expect(try Self.groupID(file) == nogroup, "\(file)")
            }
            // Anyone may search the sticky one; the closed one keeps the group out, and says so.
            #expect(granted.stderr.contains("group nogroup cannot reach the store") == (name == "closed"), "\(granted.stderr)")
        }
    }

    /// Another user plants a link where root will write its store: root refuses it, and
    /// the file it points at is neither created nor touched.
    @Test(.enabled(if: isRoot)) func rootRefusesALinkPlantedByAnotherUser() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        chmod(directory.path, 0o1777)
        let victim = directory.file("victim")
        let existing = directory.file("existing")
        try Data("precious".utf8).write(to: URL(fileURLWithPath: existing))
        for (link, target) in [("planted.db", victim), ("planted2.db", existing)] {
            let path = directory.file(link)
            try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: target)
            try #require(lchown(path, 65534, 65534) == 0)
            for arguments in [["snapshot"], ["status"], ["prune", "--older-than", "1d"]] {
                let result = try run(portauditBinary, arguments + ["--db", path])
                #expect(result.status != 0)
                #expect(result.stderr.contains("symbolic link owned by uid 65534"), "\(result.stderr)")
                #expect(result.stderr.split(separator: "\n").count == 1)
            }
        }
        #expect(!FileManager.default.fileExists(atPath: victim))
        #expect(try String(contentsOfFile: existing, encoding: .utf8) == "precious")

        // A journal file planted beside a real store is refused too.
        let store = directory.file("store.db")
        try #require(try portaudit("snapshot", "--db", store, "--quiet").status == 0)
        try FileManager.default.removeItem(atPath: store + "-shm")
        try FileManager.default.createSymbolicLink(atPath: store + "-shm", withDestinationPath: victim)
        try #require(lchown(store + "-shm", 65534, 65534) == 0)
        let journal = try portaudit("snapshot", "--db", store)
        #expect(journal.status != 0)
        #expect(journal.stderr.contains("symbolic link"), "\(journal.stderr)")
        #expect(!FileManager.default.fileExists(atPath: victim))
    }

    @Test(.enabled(if: isRoot)) func rootFollowsItsOwnLink() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try FileManager.default.createDirectory(atPath: directory.file("real"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: directory.file("link.db"), withDestinationPath: directory.file("real/store.db"))
        let result = try portaudit("snapshot", "--db", directory.file("link.db"), "--quiet")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(FileManager.default.fileExists(atPath: directory.file("real/store.db")))
        #expect(try portaudit("status", "--db", directory.file("link.db")).status == 0)
    }

    /// A read-only bind mount of the store's directory: the file and the directory are
    /// both unwritable even for root. Writes fail in one line; reads work, also for a store
    /// copied there alone, without the log files that SQLite reads a WAL store through.
    @Test(.enabled(if: isRoot), arguments: [true, false])
    func readOnlyStoreRefusesWritesAndServesReads(withLogFiles: Bool) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let writable = directory.file("rw/store.db")
        try #require(try portaudit("snapshot", "--db", writable, "--quiet").status == 0)
        if !withLogFiles {
            try DatabaseQueue(path: writable).writeWithoutTransaction { db in try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
            for file in [writable + "-wal", writable + "-shm"] { try? FileManager.default.removeItem(atPath: file) }
            try #require(!FileManager.default.fileExists(atPath: writable + "-wal"))
        }
        let mountPoint = directory.file("ro")
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        let bind = try run("/usr/bin/mount", ["--bind", directory.file("rw"), mountPoint])
        try #require(bind.status == 0, "cannot bind-mount here: \(bind.stderr)")
        defer { _ = try? run("/usr/bin/umount", [mountPoint]) }
        let remount = try run("/usr/bin/mount", ["-o", "remount,bind,ro", mountPoint])
        try #require(remount.status == 0, "\(remount.stderr)")

        let before = try storeBytes(writable)
        let readOnly = mountPoint + "/store.db"
        for arguments in [["snapshot"], ["prune", "--older-than", "1s"], ["config", "cmdline", "none"]] {
            let result = try run(portauditBinary, arguments + ["--db", readOnly])
            #expect(result.status != 0, "\(arguments)")
            #expect(result.stderr.contains("read-only"), "\(arguments): \(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1)
        }
        let history = try portaudit("history", "22", "--db", readOnly)
        #expect(history.status == 0, "\(history.stderr)")
        let status = try portaudit("status", "--db", readOnly, "--verify")
        #expect(status.status == 0, "\(status.stderr)")
        #expect(status.stdout.contains("Integrity:      ok"))
        let sql = try portaudit("sql", "SELECT count(*) AS snapshots FROM snapshot", "--db", readOnly)
        #expect(sql.status == 0, "\(sql.stderr)")
        #expect(sql.stdout.contains("1"), "\(sql.stdout)")
        #expect(try storeBytes(writable) == before)
    }

    /// An ordinary user whose store file is read-only (0400): writes fail in one line,
    /// queries work, nothing changes.
    @Test(.enabled(if: isRoot)) func readOnlyFileForAnOrdinaryUser() throws {
        let directory = try Self.openDirectory()
        defer { directory.remove() }
        let home = directory.file("home")
        try FileManager.default.createDirectory(atPath: home, withIntermediateDirectories: true)
        try #require(chown(home, 65534, 65534) == 0)
        let db = home + "/store.db"
        func asNobody(_ arguments: [String]) throws -> CommandResult {
            try run("/usr/sbin/runuser", ["-u", "nobody", "--", portauditBinary] + arguments + ["--db", db])
        }
        try #require(try asNobody(["snapshot", "--quiet"]).status == 0)
        try #require(chmod(db, 0o400) == 0)
        let before = try storeBytes(db)
        for arguments in [["snapshot"], ["config", "cmdline", "none"], ["prune", "--older-than", "1s"]] {
            let result = try asNobody(arguments)
            #expect(result.status != 0, "\(arguments)")
            #expect(result.stderr.contains("read-only"), "\(arguments): \(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1)
        }
        let history = try asNobody(["history", "22"])
        #expect(history.status == 0, "\(history.stderr)")
        #expect(try asNobody(["status"]).status == 0)
        #expect(try storeBytes(db) == before)
    }

    @Test func storeWithADamagedSchemaPageIsRefusedUnchanged() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let db = directory.file("store.db")
        try #require(try portaudit("snapshot", "--db", db, "--quiet").status == 0)
        try Self.checkpoint(db)
        // Page 1 after the 100-byte header holds the schema.
        try overwrite(db, at: 100, count: 400)
        let before = try storeBytes(db)
        for arguments in [["snapshot"], ["history", "22"], ["status"], ["prune", "--older-than", "1d"]] {
            let result = try run(portauditBinary, arguments + ["--db", db])
            #expect(result.status != 0, "\(arguments)")
            #expect(result.stderr.contains("damaged"), "\(arguments): \(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1)
        }
        #expect(try storeBytes(db) == before)
    }

    @Test func verifyFindsADamagedDataPage() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let db = directory.file("store.db")
        for _ in 0..<3 { try #require(try portaudit("snapshot", "--db", db, "--quiet").status == 0) }
        #expect(try portaudit("status", "--db", db, "--verify").status == 0)
        try Self.checkpoint(db)
        let size = try FileManager.default.attributesOfItem(atPath: db)[.size] as! Int
        // The last page belongs to a table or an index; garbage its b-tree header.
        try overwrite(db, at: size - 4096, count: 64)
        let result = try portaudit("status", "--db", db, "--verify")
        #expect(result.status != 0)
        #expect(result.stderr.contains("damaged"), "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1)
    }

    /// Moves everything from the write-ahead log into the file and empties the log, so
    /// that damage done to the file is not hidden by newer copies of its pages in the log.
    static func checkpoint(_ path: String) throws {
        let queue = try DatabaseQueue(path: path)
        try queue.writeWithoutTransaction { db in _ = try Row.fetchAll(db, sql: "PRAGMA wal_checkpoint(TRUNCATE)") }
        try queue.close()
    }

    private func overwrite(_ path: String, at offset: Int, count: Int) throws {
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
        try handle.seek(toOffset: UInt64(offset))
        handle.write(Data((0..<count).map { UInt8(truncatingIfNeeded: $0 &* 97 &+ 13) }))
        try handle.close()
    }
}
