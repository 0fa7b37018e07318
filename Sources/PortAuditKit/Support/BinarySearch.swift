/// The first index of `elements` (ordered so that `isPast` is false, then true) for which
/// `isPast` holds, or `endIndex`: a binary search.
func firstIndex<C: RandomAccessCollection>(in elements: C, where isPast: (C.Element) -> Bool) -> C.Index {
    var low = elements.startIndex, high = elements.endIndex
    while low < high {
        let middle = elements.index(low, offsetBy: elements.distance(from: low, to: high) / 2)
        if isPast(elements[middle]) { high = middle } else { low = elements.index(after: middle) }
    }
    return low
}
