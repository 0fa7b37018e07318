/// The container a process runs in, as its runtime names it.
public struct ContainerIdentity: Hashable, Sendable, Codable {
    /// docker, containerd, cri-o, kubernetes, podman, systemd-nspawn or lxc.
    public var runtime: String
    /// The runtime's id: a 64-hex-digit id for OCI runtimes, the machine or container name
    /// for systemd-nspawn and LXC.
    public var id: String

    public init(runtime: String, id: String) {
        self.runtime = runtime
        self.id = id
    }

    /// "docker 3f4e5a6b7c8d": the 12-character short id OCI tools print.
    public var shortText: String {
        let isHex = id.count == 64 && id.allSatisfy(\.isHexDigit)
        return "\(runtime) \(isHex ? String(id.prefix(12)) : id)"
    }
}

/// Reads the container of a process from the text of /proc/<pid>/cgroup. Pure: the
/// formats of each runtime are unit-tested on captured lines.
///
/// Each runtime leaves its own mark on the cgroup path:
///   docker          /docker/<id>  or  /system.slice/docker-<id>.scope
///   kubernetes      /kubepods/.../pod<uid>/<id>  (cgroupfs driver: runtime not named)
///   containerd      .../cri-containerd-<id>.scope, .../nerdctl-<id>.scope
///   cri-o           .../crio-<id>.scope
///   podman          .../libpod-<id>.scope[/container], /libpod_parent/libpod-<id>
///   systemd-nspawn  /machine.slice/systemd-nspawn@<name>.service/..., /machine.slice/machine-<name>.scope
///   lxc             /lxc.payload.<name>/..., /lxc/<name>/...
/// The innermost mark wins (a container nested in another belongs to the inner one).
/// Monitor processes (conmon, lxc.monitor) sit beside the container, not in it.
public enum ContainerCgroup {
    public static func parse(_ text: String) -> ContainerIdentity? {
        var unified: Substring?
        var legacy: [Substring] = []
        for line in text.split(separator: "\n") {
            // hierarchy-ID:controllers:path; the path itself may contain ':'.
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3, fields[2].hasPrefix("/") else { continue }
            if fields[0] == "0" && fields[1].isEmpty { unified = fields[2] } else { legacy.append(fields[2]) }
        }
        // cgroup v2 is authoritative where present; a hybrid host may leave it at "/".
        for path in (unified.map { [$0] } ?? []) + legacy {
            if let found = parse(path: path) { return found }
        }
        return nil
    }

    /// The container named by one cgroup path.
    public static func parse(path: Substring) -> ContainerIdentity? {
        let parts = path.split(separator: "/").map(String.init)
        for index in parts.indices.reversed() {
            if let found = container(parts[index], ancestors: parts[..<index]) { return found }
        }
        return nil
    }

    private static func container(_ part: String, ancestors: ArraySlice<String>) -> ContainerIdentity? {
        let scopes: [(prefix: String, runtime: String)] = [
            ("docker-", "docker"), ("cri-containerd-", "containerd"), ("nerdctl-", "containerd"),
            ("crio-", "cri-o"), ("libpod-", "podman"),
        ]
        for scope in scopes where part.hasPrefix(scope.prefix) {
            var id = part.dropFirst(scope.prefix.count)
            if id.hasSuffix(".scope") { id = id.dropLast(6) }
            if isContainerID(id) { return ContainerIdentity(runtime: scope.runtime, id: String(id)) }
        }
        if isContainerID(Substring(part)), let parent = ancestors.last {
            if parent == "docker" { return ContainerIdentity(runtime: "docker", id: part) }
            if parent == "libpod_parent" { return ContainerIdentity(runtime: "podman", id: part) }
            if ancestors.contains(where: { $0.hasPrefix("kubepods") }) { return ContainerIdentity(runtime: "kubernetes", id: part) }
        }
        if part.hasPrefix("systemd-nspawn@"), part.hasSuffix(".service") {
            let name = part.dropFirst("systemd-nspawn@".count).dropLast(".service".count)
            if !name.isEmpty { return ContainerIdentity(runtime: "systemd-nspawn", id: unescapeSystemd(name)) }
        }
        if ancestors.last == "machine.slice", part.hasPrefix("machine-"), part.hasSuffix(".scope") {
            let name = unescapeSystemd(part.dropFirst("machine-".count).dropLast(".scope".count))
            // libvirt registers its virtual machines with machined too; they are not containers.
            if !name.isEmpty && !name.hasPrefix("qemu-") { return ContainerIdentity(runtime: "systemd-nspawn", id: name) }
        }
        if part.hasPrefix("lxc.payload.") {
            let name = part.dropFirst("lxc.payload.".count)
            if !name.isEmpty { return ContainerIdentity(runtime: "lxc", id: String(name)) }
        }
        if ancestors.last == "lxc.payload" || (ancestors.count == 1 && ancestors.last == "lxc") {
            return ContainerIdentity(runtime: "lxc", id: part)
        }
        return nil
    }

    /// OCI runtimes name containers with 64 lowercase hex digits.
    private static func isContainerID(_ text: Substring) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    /// systemd unit names escape '-' and other bytes as \xNN.
    static func unescapeSystemd(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        var utf8 = Array(text.utf8)[...]
        while let byte = utf8.first {
            if byte == UInt8(ascii: "\\"), utf8.count >= 4, utf8.dropFirst().first == UInt8(ascii: "x"),
               let value = UInt8(String(decoding: utf8.dropFirst(2).prefix(2), as: UTF8.self), radix: 16) {
                bytes.append(value)
                utf8 = utf8.dropFirst(4)
            } else {
                bytes.append(byte)
                utf8 = utf8.dropFirst()
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
