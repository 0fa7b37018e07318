import Foundation

/// JSON as every command writes it: snake_case keys, ISO 8601 UTC times, stable key order.
///
/// Written here, byte for byte as Foundation's JSONEncoder writes it with these settings
/// (`referenceEncoder`; a test compares the two), because JSONEncoder took 84 % of
/// `now --format json`'s instructions at 1,000 listeners: it converted each key to snake_case
/// again in every object and cast every value to the types it treats specially. This one
/// converts each key once per run, through JSONEncoder itself, and builds a plain tree: the
/// encoding went from 389M to 160M instructions there, the command from 92 to 51 ms.
///
/// It covers what portaudit's types encode. Not copied, because nothing here does it: merging
/// two kinds of container asked of one encoder, a key written twice, the special forms of
/// Data, URL and Decimal, unconverted keys of `CodingKeyRepresentable` dictionaries, and
/// coding paths in errors.
public enum JSONOutput {
    public static func encode(_ value: some Encodable, pretty: Bool = true) throws -> String {
        var writer = Writer(pretty: pretty)
        writer.write(try TreeEncoder.node(of: value, memo: EncodingMemo()), indent: 0)
        return String(decoding: writer.bytes, as: UTF8.self)
    }

    /// The settings the output must match; `JSONOutputTests` encodes with both.
    static func referenceEncoder(pretty: Bool) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(Timestamp.iso(date))
        }
        return encoder
    }

    private struct Writer {
        let pretty: Bool
        var bytes: [UInt8] = []

        init(pretty: Bool) {
            self.pretty = pretty
            bytes.reserveCapacity(16_384)
        }

        mutating func write(_ node: JSONNode, indent: Int) {
            switch node {
            case .literal(let text):
                bytes.append(contentsOf: text.utf8)
            case .string(let text):
                quote(text)
            case .array(let items):
                bytes.append(UInt8(ascii: "["))
                for (index, item) in items.enumerated() {
                    if index > 0 { bytes.append(UInt8(ascii: ",")) }
                    if pretty { newline(indent + 2) }
                    write(item, indent: indent + 2)
                }
                if pretty { close(empty: items.isEmpty, indent: indent) }
                bytes.append(UInt8(ascii: "]"))
            case .object(let entries):
                bytes.append(UInt8(ascii: "{"))
                // `.sortedKeys` orders by UTF-8 bytes. String's < agrees for text in composed
                // form (NFC), which every key portaudit writes is (ASCII names); comparing
                // bytes with memcmp instead made `now --format json` 13 % slower.
                for (index, entry) in entries.sorted(by: { $0.key < $1.key }).enumerated() {
                    if index > 0 { bytes.append(UInt8(ascii: ",")) }
                    if pretty { newline(indent + 2) }
                    quote(entry.key)
                    if pretty { bytes.append(contentsOf: [0x20, UInt8(ascii: ":"), 0x20]) } else { bytes.append(UInt8(ascii: ":")) }
                    write(entry.value, indent: indent + 2)
                }
                if pretty { close(empty: entries.isEmpty, indent: indent) }
                bytes.append(UInt8(ascii: "}"))
            case .deferred(let encoder):
                write(encoder.result, indent: indent)
            }
        }

        private static let spaces = [UInt8](repeating: 0x20, count: 64)

        private mutating func newline(_ indent: Int) {
            bytes.append(UInt8(ascii: "\n"))
            var left = indent
            while left > 0 {
                let run = min(left, Self.spaces.count)
                bytes.append(contentsOf: Self.spaces[..<run])
                left -= run
            }
        }

        /// An empty array or object is "[", a blank line, then "]" at its own indent.
        private mutating func close(empty: Bool, indent: Int) {
            if empty { bytes.append(UInt8(ascii: "\n")) }
            newline(indent)
        }

        /// Escapes what JSONEncoder escapes: the quote, the backslash and control characters
        /// (short forms where JSON has them); "/" and all else as it is.
        private mutating func quote(_ text: String) {
            bytes.append(UInt8(ascii: "\""))
            func plain(_ byte: UInt8) -> Bool { byte >= 0x20 && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\") }
            // Read in place: stepping through `utf8` checks each index.
            let copied = text.utf8.withContiguousStorageIfAvailable { buffer in
                guard buffer.allSatisfy(plain) else { return false }
                bytes.append(contentsOf: buffer)
                return true
            }
            if copied != true {
                for byte in text.utf8 {
                    switch byte {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), byte])
                    case 0x08: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
                    case 0x0C: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
                    case 0x0A: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
                    case 0x0D: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
                    case 0x09: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
                    case ..<0x20:
                        let hex = Array("0123456789abcdef".utf8)
                        bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                                                  hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
                    default: bytes.append(byte)
                    }
                }
            }
            bytes.append(UInt8(ascii: "\""))
        }
    }
}

fileprivate indirect enum JSONNode {
    /// Already JSON text: a number, true, false or null.
    case literal(String)
    /// Text, quoted when written.
    case string(String)
    case array([JSONNode])
    case object([(key: String, value: JSONNode)])
    /// What a nested container or a `superEncoder` is given, known once its caller is done.
    case deferred(TreeEncoder)
}

/// What one run learns once: snake_case key names, each converted by JSONEncoder itself (its
/// conversion has quirks, "URLString" → "u_rl_string", that a second implementation would
/// have to copy), and which types are dictionaries keyed by String.
fileprivate final class EncodingMemo {
    private var converted: [String: String] = [:]
    private var stringKeyed: [ObjectIdentifier: Bool] = [:]

    /// Whether `type` is a dictionary keyed by String, asked once per type rather than by
    /// casting every value.
    func isStringKeyed(_ type: Any.Type) -> Bool {
        if let known = stringKeyed[ObjectIdentifier(type)] { return known }
        let answer = type is StringKeyedEncodable.Type
        stringKeyed[ObjectIdentifier(type)] = answer
        return answer
    }

    func snakeCase(_ key: String) -> String {
        if let known = converted[key] { return known }
        let name = Self.convert(key)
        converted[key] = name
        return name
    }

    private static func convert(_ key: String) -> String {
        struct Probe: Encodable {
            let key: String
            func encode(to encoder: Encoder) throws {
                var container = encoder.container(keyedBy: NameKey.self)
                try container.encodeNil(forKey: NameKey(stringValue: key))
            }
        }
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        guard let data = try? encoder.encode(Probe(key: key)),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let name = object.keys.first
        else { return key }
        return name
    }
}

private struct NameKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

/// Dictionaries keyed by String are written with their keys as they are, as JSONEncoder does.
private protocol StringKeyedEncodable {
    func entries(memo: EncodingMemo) throws -> [(key: String, value: JSONNode)]
}

extension Dictionary: StringKeyedEncodable where Key == String, Value: Encodable {
    fileprivate func entries(memo: EncodingMemo) throws -> [(key: String, value: JSONNode)] {
        try map { (key: $0.key, value: try TreeEncoder.node(of: $0.value, memo: memo)) }
    }
}

fileprivate final class TreeEncoder: Encoder {
    let memo: EncodingMemo
    var codingPath: [any CodingKey] = []
    var userInfo: [CodingUserInfoKey: Any] { [:] }
    private var object: Box<[(key: String, value: JSONNode)]>?
    private var array: Box<[JSONNode]>?
    fileprivate var single: JSONNode?

    init(memo: EncodingMemo) { self.memo = memo }

    static func node<T: Encodable>(of value: T, memo: EncodingMemo) throws -> JSONNode {
        if T.self == Date.self { return .string(Timestamp.iso(value as! Date)) }
        if memo.isStringKeyed(T.self), let dictionary = value as? StringKeyedEncodable {
            return .object(try dictionary.entries(memo: memo))
        }
        let encoder = TreeEncoder(memo: memo)
        try value.encode(to: encoder)
        return encoder.result
    }

    var result: JSONNode {
        if let object { return .object(object.value) }
        if let array { return .array(array.value) }
        return single ?? .object([])
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        let box = object ?? Box([])
        object = box
        return KeyedEncodingContainer(KeyedContainer<Key>(encoder: self, box: box))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        let box = array ?? Box([])
        array = box
        return UnkeyedContainer(encoder: self, box: box)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { SingleContainer(encoder: self) }

    static func number<F: BinaryFloatingPoint & LosslessStringConvertible>(_ value: F, codingPath: [any CodingKey]) throws -> JSONNode {
        guard value.isFinite else {
            throw EncodingError.invalidValue(value, .init(codingPath: codingPath, debugDescription: "\(value) is not valid in JSON"))
        }
        var text = value.description
        if text.hasSuffix(".0") { text.removeLast(2) }
        return .literal(text)
    }
}

private final class Box<Value> {
    var value: Value
    init(_ value: Value) { self.value = value }
}

private struct KeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let encoder: TreeEncoder
    let box: Box<[(key: String, value: JSONNode)]>
    var codingPath: [any CodingKey] { encoder.codingPath }

    private func put(_ node: JSONNode, _ key: Key) { put(node, name: key.stringValue) }
    private func put(_ node: JSONNode, name: String) { box.value.append((encoder.memo.snakeCase(name), node)) }

    mutating func encodeNil(forKey key: Key) throws { put(.literal("null"), key) }
    mutating func encode(_ value: Bool, forKey key: Key) throws { put(.literal(value ? "true" : "false"), key) }
    mutating func encode(_ value: String, forKey key: Key) throws { put(.string(value), key) }
    mutating func encode(_ value: Double, forKey key: Key) throws { put(try TreeEncoder.number(value, codingPath: codingPath), key) }
    mutating func encode(_ value: Float, forKey key: Key) throws { put(try TreeEncoder.number(value, codingPath: codingPath), key) }
    mutating func encode(_ value: Int, forKey key: Key) throws { put(.literal(String(value)), key) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { put(.literal(String(value)), key) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { put(.literal(String(value)), key) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { put(.literal(String(value)), key) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { put(.literal(String(value)), key) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { put(.literal(String(value)), key) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { put(.literal(String(value)), key) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { put(.literal(String(value)), key) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { put(.literal(String(value)), key) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { put(.literal(String(value)), key) }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws { put(try TreeEncoder.node(of: value, memo: encoder.memo), key) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        let child = TreeEncoder(memo: encoder.memo)
        put(.deferred(child), key)
        return child.container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let child = TreeEncoder(memo: encoder.memo)
        put(.deferred(child), key)
        return child.unkeyedContainer()
    }

    /// Under "super", as JSONEncoder does, whatever keys `Key` has.
    mutating func superEncoder() -> any Encoder { superEncoder(name: "super") }

    mutating func superEncoder(forKey key: Key) -> any Encoder { superEncoder(name: key.stringValue) }

    private func superEncoder(name: String) -> any Encoder {
        let child = TreeEncoder(memo: encoder.memo)
        put(.deferred(child), name: name)
        return child
    }
}

/// Unkeyed and single-value containers take values alike; only where a value goes differs.
private protocol NodeSink {
    var encoder: TreeEncoder { get }
    var codingPath: [any CodingKey] { get }
    func put(_ node: JSONNode)
}

extension NodeSink {
    mutating func encodeNil() throws { put(.literal("null")) }
    mutating func encode(_ value: Bool) throws { put(.literal(value ? "true" : "false")) }
    mutating func encode(_ value: String) throws { put(.string(value)) }
    mutating func encode(_ value: Double) throws { put(try TreeEncoder.number(value, codingPath: codingPath)) }
    mutating func encode(_ value: Float) throws { put(try TreeEncoder.number(value, codingPath: codingPath)) }
    mutating func encode(_ value: Int) throws { put(.literal(String(value))) }
    mutating func encode(_ value: Int8) throws { put(.literal(String(value))) }
    mutating func encode(_ value: Int16) throws { put(.literal(String(value))) }
    mutating func encode(_ value: Int32) throws { put(.literal(String(value))) }
    mutating func encode(_ value: Int64) throws { put(.literal(String(value))) }
    mutating func encode(_ value: UInt) throws { put(.literal(String(value))) }
    mutating func encode(_ value: UInt8) throws { put(.literal(String(value))) }
    mutating func encode(_ value: UInt16) throws { put(.literal(String(value))) }
    mutating func encode(_ value: UInt32) throws { put(.literal(String(value))) }
    mutating func encode(_ value: UInt64) throws { put(.literal(String(value))) }
    mutating func encode<T: Encodable>(_ value: T) throws { put(try TreeEncoder.node(of: value, memo: encoder.memo)) }
}

private struct UnkeyedContainer: UnkeyedEncodingContainer, NodeSink {
    let encoder: TreeEncoder
    let box: Box<[JSONNode]>
    var codingPath: [any CodingKey] { encoder.codingPath }
    var count: Int { box.value.count }

    func put(_ node: JSONNode) { box.value.append(node) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let child = TreeEncoder(memo: encoder.memo)
        put(.deferred(child))
        return child.container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let child = TreeEncoder(memo: encoder.memo)
        put(.deferred(child))
        return child.unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder {
        let child = TreeEncoder(memo: encoder.memo)
        put(.deferred(child))
        return child
    }
}

private struct SingleContainer: SingleValueEncodingContainer, NodeSink {
    let encoder: TreeEncoder
    var codingPath: [any CodingKey] { encoder.codingPath }

    func put(_ node: JSONNode) { encoder.single = node }
}
