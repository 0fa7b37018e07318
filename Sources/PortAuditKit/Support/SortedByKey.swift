extension Sequence {
    /// Sorted by a key built once per element. A comparison that builds its keys (tuples of
    /// strings taken from large structs) retains and releases them at every step, which cost
    /// more than the rest of `ports` and `now` for a few hundred rows.
    func sorted<Key>(byKey key: (Element) -> Key, _ areInIncreasingOrder: (Key, Key) -> Bool) -> [Element] {
        let elements = Array(self)
        let keys = elements.map(key)
        return elements.indices.sorted { areInIncreasingOrder(keys[$0], keys[$1]) }.map { elements[$0] }
    }
}
