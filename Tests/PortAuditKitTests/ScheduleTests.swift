import Foundation
import Testing
@testable import PortAuditKit

/// `schedule install|remove|show`, written under a temporary root instead of /.
@Suite struct ScheduleTests {
    static let standard = ["--binary", "/usr/local/bin/portaudit", "--db", "/var/lib/portaudit/portaudit.db", "--every", "5m"]

    func contrib(_ name: String) throws -> String {
        try String(contentsOf: repositoryRoot.appendingPathComponent("contrib/\(name)"), encoding: .utf8)
    }

    @Test(.enabled(if: geteuid() == 0)) func rootInstallsTheContribFilesAndRemovesThem() throws {
        let root = try TemporaryDirectory()
        defer { root.remove() }
        let cron = try portaudit(["schedule", "install", "--cron", "--root", root.path] + Self.standard)
        #expect(cron.status == 0, "\(cron.stderr)")
        let systemd = try portaudit(["schedule", "install", "--systemd", "--root", root.path] + Self.standard)
        #expect(systemd.status == 0, "\(systemd.stderr)")
        let expected = [("etc/cron.d/portaudit", "portaudit.cron"),
                        ("etc/systemd/system/portaudit-snapshot.service", "portaudit-snapshot.service"),
                        ("etc/systemd/system/portaudit-snapshot.timer", "portaudit-snapshot.timer")]
        for (installed, kept) in expected {
            let text = try String(contentsOfFile: root.file(installed), encoding: .utf8)
            #expect(text == (try contrib(kept)), "\(installed) differs from contrib/\(kept)")
            #expect(try StoreSafetyTests.mode(root.file(installed)) == 0o644)
        }
        #expect(try contrib("portaudit.cron").contains("*/5 * * * * root /usr/local/bin/portaudit snapshot --quiet --db /var/lib/portaudit/portaudit.db\n"))
        #expect(try contrib("portaudit-snapshot.timer").contains("OnUnitActiveSec=5m\n"))
        #expect(try contrib("portaudit-snapshot.service").contains("ReadWritePaths=/var/lib/portaudit\n"))
        #expect(try contrib("portaudit-snapshot.service").contains("PrivateTmp=yes\n"))
        #expect(try StoreSafetyTests.mode(root.file("var/lib/portaudit")) == 0o700)

        // show prints the same, changes nothing.
        let show = try portaudit(["schedule", "show", "--cron", "--root", root.path] + Self.standard)
        #expect(show.stdout == "# \(root.file("etc/cron.d/portaudit"))\n" + (try contrib("portaudit.cron")))

        let remove = try portaudit("schedule", "remove", "--root", root.path)
        #expect(remove.status == 0, "\(remove.stderr)")
        #expect(remove.stdout.split(separator: "\n").count == 3)
        for (installed, _) in expected { #expect(!FileManager.default.fileExists(atPath: root.file(installed))) }
        let again = try portaudit("schedule", "remove", "--root", root.path)
        #expect(again.stdout == "no schedule installed\n")
    }

    @Test func showChangesNothingAndNamesThisBinaryAndStore() throws {
        let root = try TemporaryDirectory()
        defer { root.remove() }
        let show = try portaudit("schedule", "show", "--systemd", "--every", "15m", "--root", root.path, "--db", root.file("my store.db"))
        #expect(show.status == 0, "\(show.stderr)")
        #expect(show.stdout.contains("ExecStart=\(portauditBinary) snapshot --quiet --db '\(root.file("my store.db"))'")
                || show.stdout.contains("snapshot --quiet --db '\(root.file("my store.db"))'"), "\(show.stdout)")
        #expect(show.stdout.contains("OnUnitActiveSec=15m"))
        // A store under /tmp: a private /tmp would hide it from the service.
        let inTmp = try portaudit("schedule", "show", "--systemd", "--root", root.path, "--db", "/tmp/portaudit-x/s.db")
        #expect(inTmp.status == 0 && !inTmp.stdout.contains("PrivateTmp"), "\(inTmp.stdout)")
        #expect(geteuid() != 0 || inTmp.stdout.contains("ReadWritePaths=/tmp/portaudit-x\n"), "system-wide hardening, as root: \(inTmp.stdout)")
        #expect(show.stdout.contains("# then: systemctl"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.path).isEmpty)
    }

    @Test(.enabled(if: geteuid() == 0)) func anotherUserGetsUserUnitsAndACrontabLine() throws {
        let root = try TemporaryDirectory()
        defer { root.remove() }
        chmod(root.path, 0o777)
        // runuser sets HOME to nobody's; env sets it back to a home of the test's choosing.
        func asNobody(_ arguments: [String]) throws -> CommandResult {
            try run("/usr/sbin/runuser", ["-u", "nobody", "--", "/usr/bin/env", "-u", "XDG_STATE_HOME", "-u", "PORTAUDIT_DB",
                                          "HOME=/home/tester", portauditBinary] + arguments)
        }
        let spool = root.file("var/spool/cron/crontabs/nobody")
        try FileManager.default.createDirectory(atPath: (spool as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try "MAILTO=ops\n0 3 * * * /usr/bin/backup\n".write(toFile: spool, atomically: true, encoding: .utf8)
        chmod(root.file("var/spool/cron/crontabs"), 0o777)
        chown(spool, 65534, 65534)
        let db = "/home/tester/.local/state/portaudit/portaudit.db"

        let cron = try asNobody(["schedule", "install", "--cron", "--every", "10m", "--root", root.path])
        #expect(cron.status == 0, "\(cron.stderr)")
        let table = try String(contentsOfFile: spool, encoding: .utf8)
        #expect(table.hasPrefix("MAILTO=ops\n0 3 * * * /usr/bin/backup\n"), "the user's own lines stay")
        #expect(table.contains("*/10 * * * * \(portauditBinary) snapshot --quiet --db \(db)"), "\(table)")
        // Installing twice replaces the line instead of adding one.
        #expect(try asNobody(["schedule", "install", "--cron", "--every", "15m", "--root", root.path]).status == 0)
        let twice = try String(contentsOfFile: spool, encoding: .utf8)
        #expect(twice.split(separator: "\n").count == 3, "\(twice)")
        #expect(twice.contains("*/15 * * * *"))

        let units = try asNobody(["schedule", "install", "--systemd", "--root", root.path])
        #expect(units.status == 0, "\(units.stderr)")
        let service = try String(contentsOfFile: root.file("home/tester/.config/systemd/user/portaudit-snapshot.service"), encoding: .utf8)
        #expect(service.contains("ExecStart=\(portauditBinary) snapshot --quiet --db \(db)"))
        #expect(!service.contains("ProtectSystem"), "user managers cannot apply system hardening")

        let remove = try asNobody(["schedule", "remove", "--root", root.path])
        #expect(remove.status == 0, "\(remove.stderr)")
        #expect(try String(contentsOfFile: spool, encoding: .utf8) == "MAILTO=ops\n0 3 * * * /usr/bin/backup\n")
        #expect(!FileManager.default.fileExists(atPath: root.file("home/tester/.config/systemd/user/portaudit-snapshot.timer")))
    }

    @Test(arguments: [
        (["--cron", "--every", "7m"], "evenly"),
        (["--cron", "--every", "30s"], "at least 1m"),
        (["--every", "often"], "not a duration"),
        (["--cron", "--systemd"], "systemd"),
    ])
    func badScheduleIsOneClearLine(arguments: [String], mention: String) throws {
        let root = try TemporaryDirectory()
        defer { root.remove() }
        let result = try portaudit(["schedule", "install", "--root", root.path] + arguments)
        #expect(result.status != 0)
        #expect(result.stderr.hasPrefix("portaudit: "))
        #expect(result.stderr.contains(mention), "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1)
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.path).isEmpty)
    }

    @Test func crontabMergeKeepsOtherLines() {
        let existing = "A=1\n* * * * * other\n*/5 * * * * old # portaudit schedule every 5m\n"
        #expect(SchedulePlan.mergeCrontab(existing, line: "new # portaudit schedule every 1h\n")
                == "A=1\n* * * * * other\nnew # portaudit schedule every 1h\n")
        #expect(SchedulePlan.mergeCrontab(existing, line: nil) == "A=1\n* * * * * other\n")
        #expect(SchedulePlan.mergeCrontab("", line: nil) == "")
    }

    @Test func cronExpressionsOnlyForEvenIntervals() throws {
        #expect(try SchedulePlan.cronExpression(60) == "* * * * *")
        #expect(try SchedulePlan.cronExpression(300) == "*/5 * * * *")
        #expect(try SchedulePlan.cronExpression(3600) == "0 * * * *")
        #expect(try SchedulePlan.cronExpression(6 * 3600) == "0 */6 * * *")
        #expect(try SchedulePlan.cronExpression(86400) == "0 0 * * *")
        for seconds in [90, 420, 5 * 3600, 2 * 86400] {
            #expect(throws: SchedulePlan.Invalid.self) { try SchedulePlan.cronExpression(seconds) }
        }
    }
}

