import Foundation
import Testing
@testable import PortAuditKit

/// JSONOutput writes what Foundation's JSONEncoder writes with the same settings, byte for
/// byte: the reference is JSONEncoder itself, on made-up values that reach every corner and
/// on what the commands encode from this machine and a store of it.
@Suite struct JSONOutputTests {
    private func expectSameAsJSONEncoder<T: Encodable>(_ value: T, sourceLocation: SourceLocation = #_sourceLocation) throws {
        for pretty in [true, false] {
            let reference = String(decoding: try JSONOutput.referenceEncoder(pretty: pretty).encode(value), as: UTF8.self)
            let written = try JSONOutput.encode(value, pretty: pretty)
            #expect(written == reference, "pretty: \(pretty)", sourceLocation: sourceLocation)
        }
    }

    enum Kind: String, Encodable { case first, secondKind }

    struct Inner: Encodable {
        var name = "inner"
        var emptyList: [Int] = []
        var emptyObject: [String: Int] = [:]
        var nested: [[Int]] = [[1, 2], [], [3]]
    }

    struct Everything: Encodable {
        var pid: Int32 = 4242
        var startedAt = Date(timeIntervalSince1970: 1_764_150_300.25)
        var maybeTime: Date? = nil
        var absentName: String? = nil
        var cmdline = "sh -c 'echo \"hi\"\\n'\n\ttab\r\u{1}\u{1F}\u{7F}\u{8}\u{C} /usr/bin é ☃ 😀 \u{2028}"
        var ratios: [Double] = [0, 1, -0.0, 0.5, 0.1 + 0.2, 1e15, 1e16, 2.5e-5, 123456789012.5, 5e-324, 1.7976931348623157e308]
        var smallFloat: Float = 0.1
        var flags = [true, false]
        var big: UInt64 = .max
        var negative: Int64 = .min
        var small: Int8 = -8
        var port: UInt16 = 1328
        var kind = Kind.secondKind
        var URLString = "quirk"
        var HTTPServer = 1
        var ipv6Only = true
        var a1B = 2
        var _leading = 3
        var trailing_ = 4
        var countsByName: [String: Int] = ["camelCase": 1, "snake_case": 2, "Upper": 3, "b": 4, "a/b": 5]
        var inner = Inner()
        var inners = [Inner(), Inner(name: "two")]
        var optionalInner: Inner? = Inner(name: "three")
        var unicodeKeysValue = ["é": "e", "z": "z"]

        enum CodingKeys: String, CodingKey {
            case pid, startedAt, maybeTime, absentName, cmdline, ratios, smallFloat, flags, big, negative, small, port, kind
            case URLString, HTTPServer, ipv6Only, a1B, _leading, trailing_, countsByName, inner, inners, optionalInner
            case unicodeKeysValue = "unicodeKeys_value"
            case extraList, extraObject
        }

        func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(pid, forKey: .pid)
            try c.encode(startedAt, forKey: .startedAt)
            try c.encode(maybeTime, forKey: .maybeTime)  // written as null
            try c.encodeIfPresent(absentName, forKey: .absentName)  // left out
            try c.encode(cmdline, forKey: .cmdline)
            try c.encode(ratios, forKey: .ratios)
            try c.encode(smallFloat, forKey: .smallFloat)
            try c.encode(flags, forKey: .flags)
            try c.encode(big, forKey: .big)
            try c.encode(negative, forKey: .negative)
            try c.encode(small, forKey: .small)
            try c.encode(port, forKey: .port)
            try c.encode(kind, forKey: .kind)
            try c.encode(URLString, forKey: .URLString)
            try c.encode(HTTPServer, forKey: .HTTPServer)
            try c.encode(ipv6Only, forKey: .ipv6Only)
            try c.encode(a1B, forKey: .a1B)
            try c.encode(_leading, forKey: ._leading)
            try c.encode(trailing_, forKey: .trailing_)
            try c.encode(countsByName, forKey: .countsByName)
            try c.encode(inner, forKey: .inner)
            try c.encode(inners, forKey: .inners)
            try c.encode(optionalInner, forKey: .optionalInner)
            try c.encode(unicodeKeysValue, forKey: .unicodeKeysValue)
            var list = c.nestedUnkeyedContainer(forKey: .extraList)
            try list.encode("in a nested list")
            try list.encodeNil()
            var object = c.nestedContainer(keyedBy: CodingKeys.self, forKey: .extraObject)
            try object.encode(7, forKey: .pid)
            try object.encode(Kind.first, forKey: .kind)
            try inner.encode(to: c.superEncoder())  // "super", though CodingKeys has no such case
        }
    }

    @Test func madeUpValuesReachingEveryCorner() throws {
        try expectSameAsJSONEncoder(Everything())
        try expectSameAsJSONEncoder([Everything(), Everything()])
        try expectSameAsJSONEncoder([Inner]())
        try expectSameAsJSONEncoder(["top": [Kind.first]])
    }

    @Test func notANumberIsRefusedAsJSONEncoderRefusesIt() {
        #expect(throws: EncodingError.self) { try JSONOutput.encode([Double.nan]) }
        #expect(throws: EncodingError.self) { try JSONOutput.referenceEncoder(pretty: true).encode([Double.nan]) }
    }

    @Test func whatTheCommandsEncodeFromThisMachine() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let source = LinuxListenerSource()
        let (listeners, _) = try source.currentListeners()
        try #require(!listeners.isEmpty, "this machine listens on nothing: nothing to compare")
        try expectSameAsJSONEncoder(listeners)

        let store = try Store(path: directory.file("s.db"), access: .readWrite)
        try expectSameAsJSONEncoder(try store.snapshot(from: source))
        _ = try store.snapshot(from: source, policy: HolderCachePolicy(forceFullWalk: true))
        for listener in listeners.prefix(5) {
            try expectSameAsJSONEncoder(try store.history(port: listener.port))
        }
        try expectSameAsJSONEncoder(try store.status(verify: true))
        try expectSameAsJSONEncoder(try store.prune(before: Date(), dryRun: true))
        // `check`: one listener expected, one missing, the rest unexpected.
        let first = try #require(listeners.first)
        let baseline = try Baseline(parsing: "\(first.port)/\(first.proto.rawValue)\n1/udp 192.0.2.1 nothing-listens-here\n")
        try expectSameAsJSONEncoder(baseline.check(listeners))
    }
}
