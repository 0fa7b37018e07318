import Foundation
import Testing
@testable import PortAuditKit

extension LiveSystemTests {
    @Test func baselineCheckExitsNonZeroOnUnexpectedAndMissingListeners() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let file = directory.file("baseline")
        let kept = try Listeners("tcp4")
        defer { kept.stop() }
        let leaving = try Listeners("udp6")
        let keptPort = kept.sockets[0].port, leavingPort = leaving.sockets[0].port

        let save = try portaudit("baseline", "save", file)
        try #require(save.status == 0, "\(save.stderr)")
        let saved = try String(contentsOfFile: file, encoding: .utf8)
        #expect(saved.contains("\n\(keptPort)/tcp 127.0.0.1 python3\n"), "\(saved)")
        #expect(saved.contains("\n\(leavingPort)/udp ::1 python3\n"), "\(saved)")
        let clean = try portaudit("check", "--baseline", file)
        #expect(clean.status == 0, "\(clean.stdout)\(clean.stderr)")
        #expect(clean.stdout.hasPrefix("ok: "))

        leaving.stop()
        let arriving = try Listeners("tcp6")
        defer { arriving.stop() }
        let arrivingPort = arriving.sockets[0].port
        let drift = try portaudit("check", "--baseline", file)
        #expect(drift.status == 1)
        let lines = drift.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 2, "\(drift.stdout)")
        #expect(lines.contains { $0.hasPrefix("unexpected: tcp [::1]:\(arrivingPort) (python3, pid \(arriving.sockets[0].pid))") }, "\(lines)")
        #expect(lines.contains { $0.hasPrefix("missing: \(leavingPort)/udp ::1 python3") }, "\(lines)")
        let json = try #require(try parseJSON(try portaudit("check", "--baseline", file, "--format", "json").stdout) as? [String: Any])
        #expect(json["ok"] as? Bool == false)
        #expect((json["unexpected"] as? [[String: Any]])?.map { $0["port"] as? Int } == [arrivingPort])
        #expect((json["missing"] as? [[String: Any]])?.map { $0["port"] as? Int } == [leavingPort])

        // Address and program are checked when given, and match anything when left out.
        let base = saved.split(separator: "\n").filter { !$0.contains("\(leavingPort)/udp") && !$0.hasPrefix("\(keptPort)/") }
        try (base + ["\(keptPort)/tcp * nginx", "\(arrivingPort)/tcp"]).joined(separator: "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let wrongProgram = try portaudit("check", "--baseline", file)
        #expect(wrongProgram.status == 1)
        #expect(wrongProgram.stdout.contains("unexpected: tcp 127.0.0.1:\(keptPort)"))
        #expect(wrongProgram.stdout.contains("missing: \(keptPort)/tcp * nginx"))
        try (base + ["\(keptPort)/tcp * python3 # the test's listener", "\(arrivingPort)/tcp"]).joined(separator: "\n")
            .write(toFile: file, atomically: true, encoding: .utf8)
        let matching = try portaudit("check", "--baseline", file)
        #expect(matching.status == 0, "\(matching.stdout)")
    }

    @Test(arguments: [
        ("22/tcp\nssh/tcp", "line 2"),
        ("22/sctp", "tcp or udp"),
        ("22/tcp 10.0.0.300", "not an IP address"),
        ("22/tcp * sshd extra", "fields"),
    ])
    func badBaselineIsOneClearLine(text: String, mention: String) throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try text.write(toFile: directory.file("b"), atomically: true, encoding: .utf8)
        let result = try portaudit("check", "--baseline", directory.file("b"))
        #expect(result.status != 0 && result.status != 1, "a bad file is not a finding")
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.hasPrefix("portaudit: "))
        #expect(result.stderr.contains(mention), "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1)
        let missing = try portaudit("check", "--baseline", directory.file("absent"))
        #expect(missing.status != 0 && missing.status != 1)
        #expect(missing.stderr.contains("cannot read baseline"))
    }
}
