import Foundation
import Testing
@testable import PortAuditKit

/// Parsers on text captured from a real machine, including lines that must be refused.
@Suite struct ProcNetParserTests {
    let tcp = """
          sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
           0: 0100007F:A170 00000000:0000 0A 00000000:00000003 00:00000000 00000000     0        0 22031 1 000000004a8dba66 100 0 0 10 0
           1: 00000000:07E8 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1455 1 000000004898ec66 100 0 0 10 0
           2: 0100007F:A33B 0100007F:9148 06 00000000:00000000 03:00000F4C 00000000     0        0 0 3 00000000838304a8
           7: 0100007F:D974 0100007F:A4CB 01 00000000:00000000 00:00000000 00000000     0        0 22034 1 000000009bf3c2eb 20 0 0 10 -1

        """

    @Test func tcpKeepsOnlyListeningSockets() {
        let result = ProcNetParser.parse(tcp, table: SocketTable(proto: .tcp, ipv6: false))
        #expect(result.malformed.isEmpty)
        #expect(result.sockets == [
            RawSocket(key: ListenerKey(proto: .tcp, address: "127.0.0.1", port: 0xA170), inode: 22031, uid: 0, receiveQueue: 3),
            RawSocket(key: ListenerKey(proto: .tcp, address: "0.0.0.0", port: 2024), inode: 1455, uid: 1000, receiveQueue: 0),
        ])
    }

    /// For `usage`: the local ends of ESTABLISHED lines (line 7); TIME_WAIT (line 2) is no connection.
    @Test func tcpGivesEstablishedLocalEndsWhenAsked() {
        let table = SocketTable(proto: .tcp, ipv6: false)
        let result = ProcNetParser.parse(tcp, table: table, established: true)
        #expect(result.established == [ListenerKey(proto: .tcp, address: "127.0.0.1", port: 0xD974)])
        #expect(result.sockets.map(\.inode) == [22031, 1455])
        #expect(ProcNetParser.parse(tcp, table: table).established.isEmpty)
    }

    @Test func ipv6AddressesAreDecodedWordByWord() {
        let text = """
              sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
               0: 00000000000000000000000001000000:A171 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 23500 1 00000000f7772e1e 100 0 0 10 0
               1: 000080FE00000000FF005450B6AD1DFE:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 23501 1 00000000f7772e1e 100 0 0 10 0
            """
        let result = ProcNetParser.parse(text, table: SocketTable(proto: .tcp, ipv6: true))
        #expect(result.sockets.map(\.key.address) == ["::1", "fe80::5054:ff:fe1d:adb6"])
        #expect(result.sockets.map(\.key.port) == [0xA171, 22])
    }

    /// IPv4 text is written by hand (glibc's inet_ntop goes through sprintf): it must be what
    /// inet_ntop writes, for every byte value in every position.
    @Test func ipv4TextIsWhatInetNtopWrites() {
        func ntop(_ bytes: [UInt8]) -> String {
            var buffer = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
            return bytes.withUnsafeBytes { inet_ntop(AF_INET, $0.baseAddress, &buffer, socklen_t(buffer.count)) }.map { _ in String(cString: buffer) } ?? "?"
        }
        var addresses: [[UInt8]] = [[0, 0, 0, 0], [255, 255, 255, 255], [127, 0, 0, 1], [10, 9, 99, 100], [1, 2, 3, 4]]
        for byte in UInt8.min...UInt8.max { addresses += [[byte, 0, 0, 0], [0, byte, 0, 0], [1, 1, byte, 1], [9, 99, 199, byte]] }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<1000 { addresses.append((0..<4).map { _ in UInt8.random(in: 0...255, using: &generator) }) }
        for address in addresses {
            #expect(address.withUnsafeBytes { IPAddressText.formatIPv4($0.baseAddress!) } == ntop(address), "\(address)")
            #expect(IPAddressText.format(address) == ntop(address))
        }
    }

    @Test func udpKeepsBoundUnconnectedSocketsOnly() {
        let text = """
               sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
             1375: 0100007F:E8F9 0100007F:8089 01 00000000:00000000 00:00000000 00000000     0        0 22037 2 00000000d3546134 0
            15832: 0100007F:A172 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 22030 2 00000000b50b8dc5 0
            15900: 00000000:0000 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 22039 2 00000000b50b8dc5 0
            """
        let result = ProcNetParser.parse(text, table: SocketTable(proto: .udp, ipv6: false))
        #expect(result.sockets.map(\.inode) == [22030])
    }

    @Test func malformedLinesAreCountedNotFatal() {
        let text = """
              sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
               0: 0100007F:A170 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 22031 1
               1: 0100007G:A170 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 22032 1
               2: 0100007F 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 22033 1
               3: 0100007F:A170 00000000:0000 0A
               4: 0100007F:A170 00000000:0000 ZZ 00000000:00000000 00:00000000 00000000     0        0 22034 1
               5: 0100007F:A170 00000000:0000 0A 00000000:00000000 00:00000000 00000000     x        0 22035 1
            garbage
            """
        let result = ProcNetParser.parse(text, table: SocketTable(proto: .tcp, ipv6: false))
        #expect(result.sockets.map(\.inode) == [22031])
        #expect(result.malformed == [3, 4, 5, 6, 7, 8])
    }
}

@Suite struct ProcFilesTests {
    /// Files are read 4,096 bytes at a time: one of several chunks comes back whole, in order.
    @Test func fileLongerThanAChunkIsReadWhole() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let content = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        try Data(content).write(to: URL(fileURLWithPath: directory.file("f")))
        #expect(ProcFiles.read(directory.file("f")) == content)
        #expect(ProcFiles.read(directory.file("f"), limit: 5000) == Array(content.prefix(8192)))
        #expect(ProcFiles.read(directory.file("missing")) == nil)
    }
}

@Suite struct ProcStatTests {
    @Test func fieldsAfterTheNameAreCountedFromTheLastParenthesis() throws {
        let line = "6142 (we ird) name)) R 6088 6088 1306 0 -1 4194304 100 0 0 0 0 0 0 0 20 0 1 0 54504 3133440 373 18446744073709551615 0"
        let stat = try #require(ProcStat(line))
        #expect(stat == ProcStat(pid: 6142, name: "we ird) name)", ppid: 6088, startTicks: 54504))
    }

    @Test func truncatedOrGarbledStatIsRefused() {
        #expect(ProcStat("6142 (cat) R 6088 6088") == nil)
        #expect(ProcStat("") == nil)
        #expect(ProcStat("abc (cat) R 6088 6088 1306 0 -1 4194304 100 0 0 0 0 0 0 0 20 0 1 0 54504 1") == nil)
        #expect(ProcStat("1 cat R 0 1 1 0 -1 4194304 100 0 0 0 0 0 0 0 20 0 1 0 54504 1") == nil)
    }

    @Test func ownStatIsReadFromItsBytes() throws {
        let bytes = try #require(ProcFiles.read("/proc/self/stat"))
        let stat = try #require(ProcStat(bytes: bytes))
        #expect(stat.pid == getpid())
        #expect(stat.ppid == getppid())
        #expect(stat.startTicks > 0)
        // Cut a few fields after the name: starttime (field 22) is gone.
        let close = try #require(bytes.lastIndex(of: UInt8(ascii: ")")))
        #expect(ProcStat(bytes: Array(bytes[...(close + 8)])) == nil)
    }

    /// A `children` file as the kernel writes it ("%d " per child), then synthetic noise.
    @Test func childPIDsAreReadAndNoiseSkipped() {
        #expect(DescriptorWalk.childPIDs(Array("3 4 5  123 \n".utf8)) == [3, 4, 5, 123])
        #expect(DescriptorWalk.childPIDs(Array("3 x4 4\n99999999999 -5 2147483647 2147483648".utf8)) == [3, 4, 2147483647])
        #expect(DescriptorWalk.childPIDs([]) == [])
    }

    /// Pid 2's children are candidates only where pid 2 has no address space (no `exe`):
    /// in a pid namespace it is an ordinary process.
    @Test func kernelThreadCandidatesNeedKthreaddAsPid2() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try FileManager.default.createDirectory(atPath: directory.file("2/task/2"), withIntermediateDirectories: true)
        try "5 6 ".write(toFile: directory.file("2/task/2/children"), atomically: true, encoding: .utf8)
        let root = open(directory.url.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        defer { close(root) }
        #expect(DescriptorWalk.kernelThreadCandidates(procFD: root) == [2, 5, 6])
        try FileManager.default.createSymbolicLink(atPath: directory.file("2/exe"), withDestinationPath: "/usr/bin/sh")
        #expect(DescriptorWalk.kernelThreadCandidates(procFD: root) == [])
    }

    @Test func socketLinksAreRecognised() {
        #expect(DescriptorWalk.socketInode(Array("socket:[12345]".utf8)[...]) == 12345)
        #expect(DescriptorWalk.socketInode(Array("pipe:[12345]".utf8)[...]) == nil)
        #expect(DescriptorWalk.socketInode(Array("socket:[12a45]".utf8)[...]) == nil)
        #expect(DescriptorWalk.socketInode(Array("socket:[]".utf8)[...]) == nil)
        #expect(DescriptorWalk.socketInode(Array("/dev/null".utf8)[...]) == nil)
        let namespace = Array("net:[4026531840]".utf8)
        #expect(namespace.withUnsafeBytes { DescriptorWalk.bracketedNumber($0, after: "net:[") } == 4026531840)
        #expect(namespace.withUnsafeBytes { DescriptorWalk.bracketedNumber($0, after: "socket:[") } == nil)
    }

    @Test func commandLineJoinsArguments() {
        #expect(LinuxListenerSource.commandLine(Array("nginx: worker\0-g\0daemon off;\0".utf8)) == "nginx: worker -g daemon off;")
        #expect(LinuxListenerSource.commandLine([]) == "")
    }
}

@Suite struct PortSpecTests {
    @Test func numbersProtocolsAndServiceNames() throws {
        #expect(try PortSpec(parsing: "1328") == PortSpec(port: 1328))
        #expect(try PortSpec(parsing: "1328/udp") == PortSpec(port: 1328, proto: .udp))
        #expect(try PortSpec(parsing: "ssh") == PortSpec(port: 22))
        #expect(try PortSpec(parsing: "ewall/tcp") == PortSpec(port: 1328, proto: .tcp))
    }

    @Test(arguments: ["0", "65536", "-1", "+22", "+22/tcp", "abc-no-such-service", "22/sctp", "", "22/", "1e3", "22 23", "99999999999999999999"])
    func invalidPortsAreRefused(_ text: String) {
        #expect(throws: PortSpec.Invalid.self) { try PortSpec(parsing: text) }
    }
}

@Suite struct RegistryTests {
    @Test func registryIsCarriedInTheBinary() {
        #expect(ServiceRegistry.lookup(port: 1328, proto: .tcp).map(\.service) == ["ewall"])
        #expect(ServiceRegistry.lookup(port: 22).map(\.service).contains("ssh"))
        #expect(PortRegistration(port: 1328).summary == "ewall")
    }

    @Test func rangesFollowIANA() {
        #expect(PortRange(port: 1023) == .wellKnown)
        #expect(PortRange(port: 1024) == .registered)
        #expect(PortRange(port: 49151) == .registered)
        #expect(PortRange(port: 49152) == .dynamic)
    }
}
