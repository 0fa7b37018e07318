import Foundation
import GRDB
import Testing
@testable import PortAuditKit

/// The repository this test file belongs to.
let repositoryRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The portaudit binary built beside the test bundle.
let portauditBinary: String = {
    let candidates = [
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("portaudit").path,
        Bundle.main.bundleURL.appendingPathComponent("portaudit").path,
        repositoryRoot.appendingPathComponent(".build/debug/portaudit").path,
    ]
    return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates.last!
}()

struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs a program to completion and captures what it wrote.
@discardableResult
func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws -> CommandResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let environment { process.environment = environment }
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    // Read both pipes before waiting, so a large output cannot block the child.
    nonisolated(unsafe) var errData = Data()
    let reader = Thread { errData = err.fileHandleForReading.readDataToEndOfFile() }
    reader.start()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    while !reader.isFinished { usleep(1000) }
    return CommandResult(status: process.terminationStatus,
                         stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData, as: UTF8.self))
}

/// Runs the portaudit binary.
@discardableResult
func portaudit(_ arguments: String..., environment: [String: String]? = nil) throws -> CommandResult {
    try run(portauditBinary, arguments, environment: environment)
}

/// Runs the portaudit binary with an argument list.
@discardableResult
func portaudit(_ arguments: [String], environment: [String: String]? = nil) throws -> CommandResult {
    try run(portauditBinary, arguments, environment: environment)
}

/// Bad input: a non-zero exit, nothing on stdout, one `portaudit:` line on stderr that
/// names the problem, and no store created.
func expectOneLineError(_ arguments: [String], mentioning mention: String) throws {
    let directory = try TemporaryDirectory()
    defer { directory.remove() }
    let result = try run(portauditBinary, arguments + ["--db", directory.file("s.db")])
    #expect(result.status != 0)
    #expect(result.stdout.isEmpty)
    #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
    #expect(result.stderr.hasPrefix("portaudit: "))
    #expect(result.stderr.contains(mention), "\(result.stderr)")
    #expect(!FileManager.default.fileExists(atPath: directory.file("s.db")))
}

/// A fresh directory, removed by the caller with `remove()`.
struct TemporaryDirectory {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("portaudit-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    var path: String { url.path }
    func file(_ name: String) -> String { url.appendingPathComponent(name).path }
    func remove() { try? FileManager.default.removeItem(at: url) }
}

/// Real listeners bound on loopback by scripts/listeners.py; stopped with `stop()`.
final class Listeners {
    struct Socket: Decodable {
        var proto: String
        var family: String
        var addr: String
        var port: Int
        var pid: Int32
        var pids: [Int32]
        var inode: UInt64
        var group: String
    }
    struct Manifest: Decodable {
        var supervisor: Int32
        var sockets: [Socket]
    }

    let process: Process
    let manifest: Manifest

    /// `arguments` as for listeners.py, e.g. ["--socket", "tcp4:41000"]; `launcher` runs it
    /// (e.g. ["ip", "netns", "exec", NAME] to listen in another network namespace).
    init(_ arguments: [String], launcher: [String] = []) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let manifestPath = directory.file("manifest.json")
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = launcher + ["python3", repositoryRoot.appendingPathComponent("scripts/listeners.py").path] + arguments + ["--manifest", manifestPath]
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(60)
        while !FileManager.default.fileExists(atPath: manifestPath) {
            guard process.isRunning, Date() < deadline else {
                throw TestFailure("listeners.py did not start: \(arguments)")
            }
            usleep(10_000)
        }
        manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: URL(fileURLWithPath: manifestPath)))
    }

    convenience init(_ specs: String...) throws {
        try self.init(specs.flatMap { ["--socket", $0] })
    }

    var sockets: [Socket] { manifest.sockets }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    deinit { stop() }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A free loopback TCP/UDP port number, found by binding port 0 and closing it.
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Bool in
            bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
        }
    }
    guard bound else { throw TestFailure("cannot bind a probe socket") }
    return Int(UInt16(bigEndian: address.sin_port))
}

func parseJSON(_ text: String) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(text.utf8))
}

/// A copy of the store at `path` taken back to before migration 0007 and migrated again by
/// opening it (0007, and 0010 which drops the views 0007 creates): what 0007 computes from
/// an existing history. Returns the copy's path.
func remigrate0007(_ path: String, into copy: String) throws -> String {
    try DatabaseQueue(path: path).writeWithoutTransaction { db in try db.execute(sql: "VACUUM INTO ?", arguments: [copy]) }
    try DatabaseQueue(path: copy).write { db in
        try db.execute(sql: """
            DROP TRIGGER listener_span_on_open; DROP TRIGGER listener_span_on_holder; DROP TRIGGER listener_span_on_close;
            DROP TABLE listener_span; DROP TABLE listener_holder_name; DROP TABLE coverage_gap;
            DELETE FROM schema_migration WHERE name IN ('0007_coverage_and_listener_summary', '0010_summary_views_leave_the_store');
            """)
    }
    _ = try Store(path: copy, access: .readWrite)
    return copy
}
