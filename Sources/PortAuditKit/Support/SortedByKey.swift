extension Sequence {
    /// Sorted by a key built once per element. A comparison that builds its keys (tuples of
    /// strings taken from large structs) retains and releases them at every step, which cost
    /// more than the rest of `ports` and `now` for a few hundred rows.
    func sorted<Key>(byKey key: (Element) -> Key, _ areInIncreasingOrder: (Key, Key) -> Bool) -> [Element] {
        // A key tuple of more than six elements has no `<`: Swift then compiles the key
        // closure as one returning nothing and `<` as `() < ()`, always false, and the order
        // stays as it came (seen with a seven-element key for `now`).
        assert(Key.self != Void.self, "sorted(byKey:): the key has no < (a tuple of more than six elements?)")
        let elements = Array(self)
        let keys = elements.map(key)
        return elements.indices.sorted { areInIncreasingOrder(keys[$0], keys[$1]) }.map { elements[$0] }
    }
}
