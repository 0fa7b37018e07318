import Foundation
import Testing
@testable import PortAuditKit

/// /proc/<pid>/cgroup as each runtime leaves it. This machine runs no container runtime,
/// so the lines follow the layouts the runtimes create (cgroup v1 and v2, cgroupfs and
/// systemd drivers), with made-up ids.
@Suite struct ContainerCgroupTests {
    static let id = "3f4e5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7081"
    static let inner = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    let id = Self.id

    @Test(arguments: [
        // Docker, cgroup v1, cgroupfs driver (every hierarchy names the container)
        ("12:memory:/docker/\(id)\n11:pids:/docker/\(id)\n1:name=systemd:/docker/\(id)\n0::/\n", "docker"),
        // Docker, cgroup v2, systemd driver
        ("0::/system.slice/docker-\(id).scope\n", "docker"),
        // Docker, cgroup v2, cgroupfs driver
        ("0::/docker/\(id)\n", "docker"),
        // Kubernetes with containerd, systemd driver
        ("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1f2e3d4c_5b6a_7980_a1b2_c3d4e5f60718.slice/cri-containerd-\(id).scope\n", "containerd"),
        // Kubernetes, cgroupfs driver: the runtime is not in the path
        ("11:memory:/kubepods/burstable/pod1f2e3d4c-5b6a-7980-a1b2-c3d4e5f60718/\(id)\n0::/\n", "kubernetes"),
        ("0::/kubepods/besteffort/pod1f2e3d4c-5b6a-7980-a1b2-c3d4e5f60718/\(id)\n", "kubernetes"),
        // Kubernetes with CRI-O
        ("0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1f2e3d4c_5b6a.slice/crio-\(id).scope\n", "cri-o"),
        // containerd without Kubernetes (nerdctl, systemd driver)
        ("0::/system.slice/nerdctl-\(id).scope\n", "containerd"),
        // Podman as root, and rootless, cgroup v2 (the payload sits in .../container)
        ("0::/machine.slice/libpod-\(id).scope/container\n", "podman"),
        ("0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-\(id).scope/container\n", "podman"),
        // Podman, cgroup v1, cgroupfs manager
        ("12:pids:/libpod_parent/libpod-\(id)\n11:memory:/libpod_parent/libpod-\(id)\n", "podman"),
    ])
    func ociRuntimesAreRecognised(text: String, runtime: String) {
        #expect(ContainerCgroup.parse(text) == ContainerIdentity(runtime: runtime, id: id))
    }

    @Test func systemdNspawnMachinesAreNamedAndUnescaped() {
        #expect(ContainerCgroup.parse("0::/machine.slice/systemd-nspawn@debian\\x2dbox.service/payload/system.slice/nginx.service\n")
                == ContainerIdentity(runtime: "systemd-nspawn", id: "debian-box"))
        #expect(ContainerCgroup.parse("1:name=systemd:/machine.slice/systemd-nspawn@box.service/payload\n0::/\n")
                == ContainerIdentity(runtime: "systemd-nspawn", id: "box"))
        // systemd-nspawn run directly registers a machine scope.
        #expect(ContainerCgroup.parse("0::/machine.slice/machine-build\\x2d01.scope/payload/init.scope\n")
                == ContainerIdentity(runtime: "systemd-nspawn", id: "build-01"))
        // libvirt's virtual machines are machines too, but not containers.
        #expect(ContainerCgroup.parse("0::/machine.slice/machine-qemu\\x2d1\\x2dwin10.scope/libvirt/emulator\n") == nil)
    }

    @Test func lxcContainersOfEachGeneration() {
        // LXC 4+ and LXD
        #expect(ContainerCgroup.parse("0::/lxc.payload.web01/system.slice/nginx.service\n") == ContainerIdentity(runtime: "lxc", id: "web01"))
        #expect(ContainerCgroup.parse("0::/lxc.payload.web01/init.scope\n") == ContainerIdentity(runtime: "lxc", id: "web01"))
        // LXC 1-3, cgroup v1
        #expect(ContainerCgroup.parse("12:memory:/lxc/web01\n1:name=systemd:/lxc/web01/system.slice/ssh.service\n")
                == ContainerIdentity(runtime: "lxc", id: "web01"))
        // The monitor runs beside the container, on the host.
        #expect(ContainerCgroup.parse("0::/lxc.monitor.web01\n") == nil)
    }

    @Test func innermostContainerWins() {
        let nested = "0::/system.slice/docker-\(id).scope/docker/\(Self.inner)\n"
        #expect(ContainerCgroup.parse(nested) == ContainerIdentity(runtime: "docker", id: Self.inner))
    }

    @Test func monitorsAndHostProcessesAreNotContainers() {
        for text in [
            "0::/machine.slice/libpod-conmon-\(id).scope\n",          // podman's conmon
            "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-podab.slice/crio-conmon-\(id).scope\n",
            "0::/system.slice/docker.service\n",                         // dockerd itself
            "0::/system.slice/containerd.service\n",
            "0::/user.slice/user-1000.slice/session-3.scope\n",
            "0::/init.scope\n",
            "0::/\n",
            "12:memory:/\n11:pids:/system.slice/sshd.service\n0::/\n",
            "4:memory:/process_api/8d336ed36e7ad691beedb7f22465bea7\n0::/\n",  // this sandbox's own
        ] {
            #expect(ContainerCgroup.parse(text) == nil, "\(text)")
        }
    }

    @Test func malformedTextIsRefused() {
        for text in [
            "", "\n", "garbage", "12:memory", "0::relative/docker/\(id)",
            "0::/docker/\(id.uppercased())\n",            // ids are lowercase hex
            "0::/docker/\(id.dropLast())\n",              // 63 digits
            "0::/system.slice/docker-\(id)x.scope\n",
            "0::/system.slice/docker-.scope\n",
            "0::/lxc.payload.\n",
            "0::/machine.slice/systemd-nspawn@.service\n",
        ] {
            #expect(ContainerCgroup.parse(text) == nil, "\(text)")
        }
    }

    @Test func unifiedLineIsPreferredAndAColonInThePathIsKept() {
        // Hybrid host: v2 says docker, a v1 line says something else; v2 wins.
        let hybrid = "1:name=systemd:/lxc/other\n0::/system.slice/docker-\(id).scope\n"
        #expect(ContainerCgroup.parse(hybrid) == ContainerIdentity(runtime: "docker", id: id))
        // v2 at the root: the v1 lines decide.
        #expect(ContainerCgroup.parse("0::/\n1:name=systemd:/docker/\(id)\n") == ContainerIdentity(runtime: "docker", id: id))
        #expect(ContainerCgroup.parse("0::/system.slice/odd:name.slice/docker-\(id).scope\n") == ContainerIdentity(runtime: "docker", id: id))
    }

    @Test func shortTextUsesTwelveDigitsForOCIIds() {
        #expect(ContainerIdentity(runtime: "docker", id: id).shortText == "docker 3f4e5a6b7c8d")
        #expect(ContainerIdentity(runtime: "lxc", id: "web01").shortText == "lxc web01")
    }

    @Test func systemdEscapesAreDecoded() {
        #expect(ContainerCgroup.unescapeSystemd("a\\x2db\\x2fc") == "a-b/c")
        #expect(ContainerCgroup.unescapeSystemd("bad\\x2") == "bad\\x2")
        #expect(ContainerCgroup.unescapeSystemd("bad\\xzz1") == "bad\\xzz1")
    }
}

@Suite struct NamespaceAndDurationParsingTests {
    @Test func netnsSelections() throws {
        #expect(try NamespaceSelection(parsing: "host") == .host)
        #expect(try NamespaceSelection(parsing: "all") == .all)
        #expect(try NamespaceSelection(parsing: "4026532301") == .id("4026532301"))
        #expect(try NamespaceSelection(parsing: "blue") == .id("blue"))
        for bad in ["", "a/b", ".", ".."] {
            #expect(throws: NamespaceSelection.Invalid.self) { try NamespaceSelection(parsing: bad) }
        }
        #expect(NamespaceSelection.id("4026532301").matches(NetworkNamespace(inode: 4026532301)))
        #expect(NamespaceSelection.id("blue").matches(NetworkNamespace(inode: 1, name: "blue")))
        #expect(!NamespaceSelection.id("blue").matches(NetworkNamespace(inode: 1, name: "red")))
    }

    @Test func durations() throws {
        #expect(try DurationText.fractionalSeconds("200ms") == 0.2)
        #expect(try DurationText.fractionalSeconds("1s") == 1)
        #expect(try DurationText.fractionalSeconds("1.5s") == 1.5)
        #expect(try DurationText.fractionalSeconds("5m") == 300)
        #expect(try DurationText.fractionalSeconds("1h") == 3600)
        #expect(try DurationText.fractionalSeconds("2") == 2)
        for bad in ["", "s", "0s", "-1s", "1x", "1 s s", "inf", "nan", "1e3s", "ms"] {
            #expect(throws: DurationText.Invalid.self, "\(bad)") { try DurationText.fractionalSeconds(bad) }
        }
    }

    @Test func watchSchedulesOnTheIntervalGridAndSkipsMissedSlots() {
        let start = Date(timeIntervalSince1970: 1000)
        typealias W = Watcher<LinuxListenerSource>
        #expect(W.nextCheck(after: start, interval: 1, now: start.addingTimeInterval(0.3)) == start.addingTimeInterval(1))
        #expect(W.nextCheck(after: start, interval: 1, now: start.addingTimeInterval(3.5)) == start.addingTimeInterval(4))
        #expect(W.nextCheck(after: start, interval: 1, now: start.addingTimeInterval(1)) == start.addingTimeInterval(2))
    }
}
