import Foundation
import MoLASupport

/// CSV pixel tables: one image per row, pixel values in row-major order, and a label column.
/// Parsed from bytes (no String per field), so 5,000 rows of 785 values take milliseconds.
public struct CSVPixelTable {
    public enum LabelColumn: Equatable { case first, last, index(Int), name(String) }

    public var rowCount: Int { labels.count }
    public let pixelsPerRow: Int
    /// Pixels scaled to 0-255, `pixelsPerRow` per row; rows with a problem hold zeros.
    public var pixels: [UInt8]
    public var labels: [Int]
    /// Rows that could not be read, by row number (1-based, as an editor shows them).
    public var problems: [Int: String] = [:]
    /// 1-based file line of each row, for error messages.
    public var lineNumbers: [Int] = []

    /// - Parameters:
    ///   - pixelMax: the value that means full intensity (255 for 8-bit, 16 for optdigits).
    ///   - header: `nil` detects a header (a first row with a non-numeric field).
    public init(path: String, pixelsPerRow: Int, labelColumn: LabelColumn, pixelMax: Double, header: Bool?) throws {
        let bytes = try FileIO.readMaybeGzip(path)
        self.pixelsPerRow = pixelsPerRow
        pixels = []
        labels = []
        var lines: [Range<Int>] = []
        var start = 0
        for i in 0..<bytes.count where bytes[i] == 0x0A {
            lines.append(start..<i); start = i + 1
        }
        if start < bytes.count { lines.append(start..<bytes.count) }
        var lineNo = lines.indices.map { $0 + 1 }
        // Drop blank lines (and a trailing \r).
        var kept: [Range<Int>] = []
        var keptNo: [Int] = []
        for (k, var r) in lines.enumerated() {
            if r.upperBound > r.lowerBound, bytes[r.upperBound - 1] == 0x0D { r = r.lowerBound..<(r.upperBound - 1) }
            if bytes[r].allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            kept.append(r); keptNo.append(lineNo[k])
        }
        lines = kept; lineNo = keptNo
        guard !lines.isEmpty else { throw DataError(file: path, "no rows", fix: "check that this is the right file") }
        func fields(_ r: Range<Int>) -> [Range<Int>] {
            var out: [Range<Int>] = []
            var s = r.lowerBound
            for i in r where bytes[i] == 0x2C { out.append(s..<i); s = i + 1 }
            out.append(s..<r.upperBound)
            return out
        }
        let firstFields = fields(lines[0])
        let hasHeader = header ?? firstFields.contains { Self.number(bytes, $0) == nil }
        let width = hasHeader ? firstFields.count : firstFields.count
        var labelIndex: Int
        switch labelColumn {
        case .first: labelIndex = 0
        case .last: labelIndex = width - 1
        case .index(let i): labelIndex = i
        case .name(let name):
            guard hasHeader else {
                throw DataError(file: path, "label_column '\(name)' names a column, but the file has no header row",
                                fix: "use label_column: last, first or a 0-based column number")
            }
            let names = firstFields.map { String(decoding: bytes[$0], as: UTF8.self).trimmingCharacters(in: .whitespaces.union(CharacterSet(charactersIn: "\""))) }
            guard let i = names.firstIndex(of: name) else {
                throw DataError(file: path, "no column named '\(name)' in the header",
                                fix: "use one of: \(names.prefix(8).joined(separator: ", "))\(names.count > 8 ? ", …" : "")")
            }
            labelIndex = i
        }
        guard labelIndex >= 0, labelIndex < width else {
            throw DataError(file: path, "label column \(labelIndex) is outside the \(width) columns",
                            fix: "use label_column: last, first or a 0-based column number below \(width)")
        }
        let dataLines = hasHeader ? Array(lines.dropFirst()) : lines
        lineNumbers = hasHeader ? Array(lineNo.dropFirst()) : lineNo
        pixels = [UInt8](repeating: 0, count: dataLines.count * pixelsPerRow)
        labels = [Int](repeating: -1, count: dataLines.count)
        let scale = 255.0 / pixelMax
        for (row, r) in dataLines.enumerated() {
            let f = fields(r)
            guard f.count == pixelsPerRow + 1 else {
                problems[lineNumbers[row]] = "has \(f.count) columns, expected \(pixelsPerRow + 1) (\(pixelsPerRow) pixels and a label)"
                continue
            }
            guard let label = Self.number(bytes, f[labelIndex]), label == label.rounded() else {
                problems[lineNumbers[row]] = "label '\(String(decoding: bytes[f[labelIndex]], as: UTF8.self))' is not a whole number"
                continue
            }
            labels[row] = Int(label)
            var p = row * pixelsPerRow
            for (k, field) in f.enumerated() where k != labelIndex {
                guard let v = Self.number(bytes, field) else {
                    problems[lineNumbers[row]] = "column \(k + 1) '\(String(decoding: bytes[field], as: UTF8.self))' is not a number"
                    break
                }
                pixels[p] = UInt8(min(255, max(0, (v * scale).rounded())))
                p += 1
            }
        }
    }

    /// Parses an integer quickly, anything else (decimals, exponents) through strtod.
    static func number(_ b: [UInt8], _ r: Range<Int>) -> Double? {
        var lo = r.lowerBound, hi = r.upperBound
        while lo < hi, b[lo] == 0x20 || b[lo] == 0x22 { lo += 1 }
        while hi > lo, b[hi - 1] == 0x20 || b[hi - 1] == 0x22 { hi -= 1 }
        guard lo < hi else { return nil }
        var v = 0
        var i = lo
        while i < hi, b[i] >= 0x30, b[i] <= 0x39 { v = v * 10 + Int(b[i] - 0x30); i += 1 }
        if i == hi { return Double(v) }
        let text = String(decoding: b[lo..<hi], as: UTF8.self)
        return Double(text)
    }
}
