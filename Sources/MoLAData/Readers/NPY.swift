import Foundation
import MoLASupport

/// The header of a `.npy` array (format versions 1-3): dtype, memory order and shape.
public struct NPYHeader: Equatable, Sendable {
    public enum Kind: Character, Sendable { case unsigned = "u", signed = "i", float = "f", bool = "b" }
    public var kind: Kind
    public var itemSize: Int
    public var bigEndian: Bool
    public var fortranOrder: Bool
    public var shape: [Int]
    /// Bytes before the data (magic, version, length, dictionary, padding).
    public var headerLength: Int

    public init(kind: Kind, itemSize: Int, shape: [Int]) {
        self.kind = kind
        self.itemSize = itemSize
        self.bigEndian = false
        self.fortranOrder = false
        self.shape = shape
        self.headerLength = 0
    }

    /// Elements (0 when the shape overflows; `parse` refuses such headers).
    public var count: Int { Limits.product(shape) ?? 0 }
    public var dataBytes: Int { Limits.product([count, itemSize]) ?? 0 }
    public var descr: String {
        (itemSize == 1 ? "|" : (bigEndian ? ">" : "<")) + String(kind.rawValue) + String(itemSize)
    }

    /// Parses the header at the start of `bytes`; `bytes` must hold at least the header.
    /// Errors describe the problem; the caller adds the file and member.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws -> NPYHeader {
        func fail(_ s: String) -> NPYFailure { NPYFailure(message: s) }
        let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // \x93NUMPY
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else { throw fail("not a .npy array (bad magic)") }
        let major = bytes[6]
        let (dictStart, dictLen): (Int, Int)
        switch major {
        case 1: (dictStart, dictLen) = (10, Int(bytes[8]) | Int(bytes[9]) << 8)
        case 2, 3:
            guard bytes.count >= 12 else { throw fail("header ends early") }
            (dictStart, dictLen) = (12, Int(bytes.loadUnaligned(fromByteOffset: 8, as: UInt32.self).littleEndian))
        default: throw fail(".npy format version \(major) is not supported")
        }
        guard bytes.count >= dictStart + dictLen else { throw fail("header ends early") }
        let dict = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[dictStart..<(dictStart + dictLen)]), as: UTF8.self)
        guard let descr = pythonValue(dict, key: "descr"), let order = pythonValue(dict, key: "fortran_order"),
              let shapeText = pythonValue(dict, key: "shape")
        else { throw fail("header dictionary lacks descr, fortran_order or shape: \(dict)") }
        let d = descr.trimmingCharacters(in: CharacterSet(charactersIn: "'\""))
        guard d.count >= 3, let kind = Kind(rawValue: d[d.index(after: d.startIndex)]),
              let size = Int(d.dropFirst(2)), [1, 2, 4, 8].contains(size)
        else { throw fail("unsupported dtype \(descr) (need an integer, float or bool type)") }
        var shape: [Int] = []
        for part in shapeText.trimmingCharacters(in: CharacterSet(charactersIn: "() ")).split(separator: ",") {
            let t = part.trimmingCharacters(in: .whitespaces)
            if t.isEmpty { continue }
            guard let v = Int(t.hasSuffix("L") ? String(t.dropLast()) : t), v >= 0 else { throw fail("bad shape \(shapeText)") }
            shape.append(v)
        }
        guard let n = Limits.product(shape), Limits.product([n, size]) != nil else { throw fail("shape \(shapeText) is too large for any file") }
        var h = NPYHeader(kind: kind, itemSize: size, shape: shape)
        h.bigEndian = d.first == ">"
        h.fortranOrder = order.hasPrefix("True")
        h.headerLength = dictStart + dictLen
        return h
    }

    /// The value text after `'key':` in a Python dict literal (up to the matching delimiter).
    static func pythonValue(_ dict: String, key: String) -> String? {
        guard let r = dict.range(of: "'\(key)'") ?? dict.range(of: "\"\(key)\"") else { return nil }
        var rest = dict[r.upperBound...].drop { $0 == " " }
        guard rest.first == ":" else { return nil }
        rest = rest.dropFirst().drop { $0 == " " }
        if rest.first == "(" {
            guard let close = rest.firstIndex(of: ")") else { return nil }
            return String(rest[...close])
        }
        let end = rest.firstIndex { $0 == "," || $0 == "}" } ?? rest.endIndex
        return String(rest[..<end]).trimmingCharacters(in: .whitespaces)
    }

    /// Encodes a version 1.0 header padded so the data starts on a 64-byte boundary.
    public func encoded() -> [UInt8] {
        let shapeText = shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ", ") + ")"
        var dict = "{'descr': '\(descr)', 'fortran_order': \(fortranOrder ? "True" : "False"), 'shape': \(shapeText), }"
        let total = (10 + dict.utf8.count + 1 + 63) / 64 * 64
        dict += String(repeating: " ", count: total - 10 - dict.utf8.count - 1) + "\n"
        var out: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0]
        out.le16(UInt32(dict.utf8.count))
        out.append(contentsOf: dict.utf8)
        return out
    }

    /// Reads element `i` of an integer array as Int (any size, either byte order).
    public func integer(_ data: UnsafeRawBufferPointer, _ i: Int) -> Int {
        let o = i * itemSize
        switch (kind, itemSize) {
        case (.unsigned, 1), (.bool, 1): return Int(data[o])
        case (.signed, 1): return Int(Int8(bitPattern: data[o]))
        case (.unsigned, 2): return Int(fix(data.loadUnaligned(fromByteOffset: o, as: UInt16.self)))
        case (.signed, 2): return Int(Int16(bitPattern: fix(data.loadUnaligned(fromByteOffset: o, as: UInt16.self))))
        case (.unsigned, 4): return Int(fix(data.loadUnaligned(fromByteOffset: o, as: UInt32.self)))
        case (.signed, 4): return Int(Int32(bitPattern: fix(data.loadUnaligned(fromByteOffset: o, as: UInt32.self))))
        case (.unsigned, 8): return Int(truncatingIfNeeded: fix(data.loadUnaligned(fromByteOffset: o, as: UInt64.self)))
        case (.signed, 8): return Int(Int64(bitPattern: fix(data.loadUnaligned(fromByteOffset: o, as: UInt64.self))))
        case (.float, 4): return Int(exactly: Float(bitPattern: fix(data.loadUnaligned(fromByteOffset: o, as: UInt32.self)))) ?? -1
        case (.float, 8): return Int(exactly: Double(bitPattern: fix(data.loadUnaligned(fromByteOffset: o, as: UInt64.self)))) ?? -1
        default: return -1
        }
    }

    private func fix<T: FixedWidthInteger>(_ v: T) -> T { bigEndian ? T(bigEndian: v) : T(littleEndian: v) }
}

public struct NPYFailure: MoLAError {
    public var message: String
    public var description: String { message }
}
