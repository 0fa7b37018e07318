import Testing
@testable import PortAuditKit

@Suite struct ListenerKeyHashTests {
    /// The hash folds address and interface into one word: the boundary between them must
    /// count, or every "a" + "b" would collide with "ab" + "".
    @Test func addressAndInterfaceAreHashedApart() {
        let split = ListenerKey(proto: .tcp, address: "10.0.0.1", port: 80, interface: "eth0")
        let joined = ListenerKey(proto: .tcp, address: "10.0.0.1eth0", port: 80, interface: "")
        #expect(split.hashValue != joined.hashValue)
        #expect(split.hashValue == ListenerKey(proto: .tcp, address: "10.0.0.1", port: 80, interface: "eth0").hashValue)
        #expect(split.hashValue != ListenerKey(proto: .udp, address: "10.0.0.1", port: 80, interface: "eth0").hashValue)
        #expect(split.hashValue != ListenerKey(proto: .tcp, address: "10.0.0.1", port: 81, interface: "eth0").hashValue)
    }

    /// Equal keys hash alike: String equality is canonical equivalence, which the bytes alone
    /// do not show.
    @Test(arguments: [("e\u{301}th0", "\u{e9}th0"), ("\u{212A}", "K"), ("wg\u{37E}0", "wg;0")])
    func canonicallyEquivalentNamesHashAlike(_ one: String, _ other: String) {
        let a = ListenerKey(proto: .udp, address: "::1", port: 53, interface: one)
        let b = ListenerKey(proto: .udp, address: "::1", port: 53, interface: other)
        #expect(a == b)
        #expect(a.hashValue == b.hashValue)
        #expect(Set([a, b]).count == 1)
    }
}
