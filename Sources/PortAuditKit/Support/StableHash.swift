import Foundation

/// Hashes that are the same in every run (Swift's Hasher is seeded per process), for what is
/// kept in the store or compared across runs.
enum StableHash {
    static let seed: UInt64 = 0xcbf2_9ce4_8422_2325

    /// One FNV-1a step: `value` with `word` (a byte, where the text is folded) mixed in.
    static func step(_ value: UInt64, _ word: UInt64) -> UInt64 {
        (value ^ word) &* 0x100_0000_01b3
    }

    /// FNV-1a over the string's UTF-8, read in place (stepping through `utf8` checks each index).
    /// Strings are equal when canonically equivalent ("e" + U+0301 is "é", U+212A is "K"), so
    /// text that is not ASCII is folded in its composed form, as String's own hash does.
    static func fold(_ text: String, into start: UInt64) -> UInt64 {
        func fold<Bytes: Sequence<UInt8>>(_ bytes: Bytes, asciiOnly: Bool) -> UInt64? {
            var value = start
            for byte in bytes {
                if asciiOnly && byte >= 0x80 { return nil }
                value = step(value, UInt64(byte))
            }
            return value
        }
        let ascii = text.utf8.withContiguousStorageIfAvailable { fold($0, asciiOnly: true) } ?? fold(text.utf8, asciiOnly: true)
        return ascii ?? fold(text.precomposedStringWithCanonicalMapping.utf8, asciiOnly: false)!
    }

    /// MurmurHash3's finaliser: every input bit moves every output bit, so that words summed
    /// into a digest cannot cancel a change out.
    static func mixed(_ value: UInt64) -> UInt64 {
        var k = value
        k ^= k >> 33
        k &*= 0xff51_afd7_ed55_8ccd
        k ^= k >> 33
        k &*= 0xc4ce_b9fe_1a85_ec53
        k ^= k >> 33
        return k
    }

    /// Three words chained through `mixed`, in this order (no array: this runs per socket).
    static func mixed(_ a: UInt64, _ b: UInt64, _ c: UInt64) -> UInt64 {
        mixed(mixed(mixed(a) ^ b) ^ c)
    }
}
