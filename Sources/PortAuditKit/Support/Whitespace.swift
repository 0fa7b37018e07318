extension StringProtocol {
    /// Without leading and trailing whitespace. Foundation's trimmingCharacters(in:) builds a
    /// CharacterSet first, which costs more than the files a snapshot trims.
    func trimmingWhitespace() -> String {
        guard let first = firstIndex(where: { !$0.isWhitespace }), let last = lastIndex(where: { !$0.isWhitespace }) else { return "" }
        return String(self[first...last])
    }
}
