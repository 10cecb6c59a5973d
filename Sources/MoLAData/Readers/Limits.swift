/// What a file of a given size can hold at most, so no reader sizes a buffer or a loop from
/// a damaged header: every size a header declares is checked against the bytes that are
/// there before anything is allocated.
enum Limits {
    /// Deflate's largest expansion: a 258-byte match costs at least 2 bits, so one input
    /// byte yields at most 1032 output bytes (zlib's own bound).
    static let deflateExpansion = 1032

    /// Whether `declared` bytes can come out of `compressed` bytes of deflate data.
    static func inflatable(_ declared: Int, from compressed: Int) -> Bool {
        declared >= 0 && declared <= deflateExpansion * compressed + 64
    }

    /// The product of a header's sizes, or nil when it overflows (a damaged header must
    /// give an error, not a trap).
    static func product(_ sizes: [Int]) -> Int? {
        var p = 1
        for s in sizes {
            guard s >= 0 else { return nil }
            let (r, overflow) = p.multipliedReportingOverflow(by: s)
            if overflow { return nil }
            p = r
        }
        return p
    }
}
