extension String {
    /// The text a C function wrote into `buffer`, up to its first NUL (the array form of
    /// `String(cString:)` is deprecated).
    init(nulTerminated buffer: [CChar]) {
        self.init(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
