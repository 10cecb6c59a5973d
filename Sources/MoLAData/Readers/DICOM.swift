import Foundation

/// A DICOM file's image: the attributes that say how to read its pixels, and the native
/// (uncompressed) pixel data, parsed in Swift. Transfer syntaxes: implicit VR little
/// endian, explicit VR little and big endian, deflated explicit VR little endian (zlib);
/// files without a meta header are read by what their first element looks like.
/// Compressed syntaxes (JPEG, JPEG-LS, JPEG 2000, RLE) are refused with their name and
/// the command that decompresses them.
struct DICOMImage {
    var rows = 0, columns = 0, samplesPerPixel = 1, bitsAllocated = 0, bitsStored = 0
    var signed = false, planar = false, frames = 1
    var photometric = "MONOCHROME2"
    var slope = 1.0, intercept = 0.0
    var windowCenter: Double?, windowWidth: Double?
    var pixels: [UInt8] = []
    var bigEndian = false

    static let compressed: [String: String] = [
        "1.2.840.10008.1.2.4.50": "JPEG Baseline", "1.2.840.10008.1.2.4.51": "JPEG Extended",
        "1.2.840.10008.1.2.4.57": "JPEG Lossless", "1.2.840.10008.1.2.4.70": "JPEG Lossless SV1",
        "1.2.840.10008.1.2.4.80": "JPEG-LS Lossless", "1.2.840.10008.1.2.4.81": "JPEG-LS Near-lossless",
        "1.2.840.10008.1.2.4.90": "JPEG 2000 Lossless", "1.2.840.10008.1.2.4.91": "JPEG 2000",
        "1.2.840.10008.1.2.4.201": "HTJ2K Lossless", "1.2.840.10008.1.2.4.203": "HTJ2K",
        "1.2.840.10008.1.2.5": "RLE Lossless",
    ]

    struct Failure: Error, CustomStringConvertible {
        var description: String
        var fix: String
    }

    init(_ data: [UInt8]) throws {
        var p = 0
        var syntax = ""
        if data.count >= 132, Array(data[128..<132]) == Array("DICM".utf8) {
            p = 132
            // File meta: always explicit VR little endian, group 0002.
            var meta = Reader(bytes: data, explicit: true, bigEndian: false)
            meta.offset = p
            while meta.offset + 8 <= data.count, meta.peekGroup() == 0x0002 {
                let e = try meta.next()
                if e.tag == 0x0002_0010 { syntax = meta.string(e) }
            }
            p = meta.offset
        }
        var body = data
        var explicit = true
        switch syntax {
        case "1.2.840.10008.1.2": explicit = false
        case "1.2.840.10008.1.2.1", "": break
        case "1.2.840.10008.1.2.2": bigEndian = true
        case "1.2.840.10008.1.2.1.99":
            body = Array(data[..<p]) + (try data[p...].withUnsafeBytes { try Zlib.inflate($0, container: .raw) })
        default:
            let name = Self.compressed[syntax].map { "\($0) (\(syntax))" } ?? "transfer syntax \(syntax)"
            throw Failure(description: "compressed pixel data: \(name) is not decoded here",
                          fix: "decompress it first: gdcmconv --raw IN OUT, or dcmtk's dcmdjpeg / dcmdrle IN OUT")
        }
        if syntax.isEmpty {
            // No meta header: guess the encoding from the first element (group 0008 usually).
            guard data.count >= 8 else { throw Failure(description: "too short to be DICOM", fix: "check the file") }
            let vr = data[4...5].allSatisfy { (0x41...0x5A).contains($0) }
            explicit = vr
            bigEndian = data[0] == 0x00 && data[1] != 0x00
        }
        var r = Reader(bytes: body, explicit: explicit, bigEndian: bigEndian)
        r.offset = p
        var sawPixels = false
        while r.offset < body.count {
            let e = try r.next()
            switch e.tag {
            case 0x0028_0010: rows = r.uint(e)
            case 0x0028_0011: columns = r.uint(e)
            case 0x0028_0002: samplesPerPixel = r.uint(e)
            case 0x0028_0100: bitsAllocated = r.uint(e)
            case 0x0028_0101: bitsStored = r.uint(e)
            case 0x0028_0103: signed = r.uint(e) == 1
            case 0x0028_0006: planar = r.uint(e) == 1
            case 0x0028_0004: photometric = r.string(e)
            case 0x0028_0008: frames = min(max(1, Int(r.string(e).trimmingCharacters(in: .whitespaces)) ?? 1), 1 << 24)
            case 0x0028_1052: intercept = r.decimal(e) ?? 0
            case 0x0028_1053: slope = r.decimal(e) ?? 1
            case 0x0028_1050: windowCenter = r.decimal(e)
            case 0x0028_1051: windowWidth = r.decimal(e)
            case 0x7FE0_0010:
                guard e.length != nil else {
                    throw Failure(description: "encapsulated (compressed) pixel data in a native transfer syntax",
                                  fix: "the file is damaged or mislabelled; re-export it")
                }
                pixels = Array(body[e.value])
                // 8-bit samples in a big-endian OW value are stored in swapped byte pairs.
                if bigEndian && e.vr == "OW" && bitsAllocated == 8 {
                    var i = 0
                    while i + 1 < pixels.count { pixels.swapAt(i, i + 1); i += 2 }
                }
                sawPixels = true
            default: break
            }
            if sawPixels { break }
        }
        guard sawPixels else { throw Failure(description: "no pixel data (7FE0,0010)", fix: "this DICOM holds no image (a report or structure set?); remove it") }
        guard rows > 0, columns > 0, [8, 16, 32].contains(bitsAllocated), [1, 3].contains(samplesPerPixel) else {
            throw Failure(description: "unsupported image: \(rows)×\(columns), \(bitsAllocated)-bit, \(samplesPerPixel) samples per pixel",
                          fix: "convert it to 8-, 16- or 32-bit grey or 8-bit RGB")
        }
        guard samplesPerPixel == 1 || (photometric == "RGB" && bitsAllocated == 8) else {
            throw Failure(description: "photometric interpretation \(photometric) with \(samplesPerPixel) samples is not supported",
                          fix: "convert it to RGB or to grey")
        }
        guard rows <= 65535, columns <= 65535, pixels.count >= frameBytes * frames else {
            throw Failure(description: "pixel data holds \(pixels.count) bytes, \(frameBytes * frames) expected for \(frames) frame(s) of \(rows)×\(columns)",
                          fix: "the file is truncated; fetch it again")
        }
    }

    var frameBytes: Int { rows * columns * samplesPerPixel * bitsAllocated / 8 }

    /// The stored values of one grey frame after the modality rescale (slope, intercept):
    /// Hounsfield units for CT.
    func modalityValues(frame: Int) -> [Double] {
        let n = rows * columns
        let base = frame * frameBytes
        let bits = bitsStored > 0 ? min(bitsStored, bitsAllocated) : bitsAllocated
        return (0..<n).map { i in
            var raw = 0
            let width = bitsAllocated / 8
            for k in 0..<width {
                let byte = Int(pixels[base + width * i + (bigEndian ? k : width - 1 - k)])
                raw = raw << 8 | byte
            }
            // The stored bits (the low ones: high bit = bits stored − 1), two's complement
            // when Pixel Representation says signed.
            raw &= (1 << bits) - 1
            if signed && raw >= 1 << (bits - 1) { raw -= 1 << bits }
            return Double(raw) * slope + intercept
        }
    }

    /// An RGB frame's 8-bit samples, interleaved.
    func rgb(frame: Int) -> [UInt8] {
        let n = rows * columns
        let base = frame * frameBytes
        guard planar else { return Array(pixels[base..<(base + 3 * n)]) }
        return (0..<(3 * n)).map { pixels[base + ($0 % 3) * n + $0 / 3] }
    }

    /// One element's place in the stream.
    struct Element {
        var tag: UInt32
        var vr: String
        var length: Int?
        var value: Range<Int>
    }

    struct Reader {
        let bytes: [UInt8]
        let explicit: Bool
        let bigEndian: Bool
        var offset = 0

        func u16(_ o: Int) -> Int { bigEndian ? Int(bytes[o]) << 8 | Int(bytes[o + 1]) : Int(bytes[o]) | Int(bytes[o + 1]) << 8 }
        func u32(_ o: Int) -> Int { bigEndian ? u16(o) << 16 | u16(o + 2) : u16(o) | u16(o + 2) << 16 }
        func peekGroup() -> Int { u16(offset) }

        static let longVRs: Set<String> = ["OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"]

        /// The next element at this nesting level (sequences and items skipped whole).
        mutating func next() throws -> Element {
            guard offset + 8 <= bytes.count else { throw Failure(description: "truncated element header at byte \(offset)", fix: "the file is truncated; fetch it again") }
            let tag = UInt32(u16(offset)) << 16 | UInt32(u16(offset + 2))
            var vr = "", length: Int
            if explicit && tag >> 16 != 0xFFFE {
                vr = String(decoding: bytes[(offset + 4)..<(offset + 6)], as: UTF8.self)
                if Self.longVRs.contains(vr) {
                    guard offset + 12 <= bytes.count else { throw Failure(description: "truncated element header at byte \(offset)", fix: "the file is truncated; fetch it again") }
                    length = u32(offset + 8); offset += 12
                } else {
                    length = u16(offset + 6); offset += 8
                }
            } else {
                length = u32(offset + 4); offset += 8
            }
            if length == 0xFFFF_FFFF {
                // Undefined length: a sequence, or encapsulated pixel data — skip its items.
                let start = offset
                try skipItems()
                return Element(tag: tag, vr: vr, length: nil, value: start..<offset)
            }
            guard offset + length <= bytes.count else {
                throw Failure(description: "element (\(String(format: "%04X,%04X", tag >> 16, tag & 0xFFFF))) runs past the end of the file", fix: "the file is truncated; fetch it again")
            }
            let value = offset..<(offset + length)
            offset += length
            return Element(tag: tag, vr: vr, length: length, value: value)
        }

        /// Skips items up to and including a sequence delimiter (FFFE,E0DD).
        mutating func skipItems() throws {
            while offset + 8 <= bytes.count {
                let tag = UInt32(u16(offset)) << 16 | UInt32(u16(offset + 2))
                let length = u32(offset + 4)
                offset += 8
                if tag == 0xFFFE_E0DD { return }
                if tag == 0xFFFE_E000 && length == 0xFFFF_FFFF {
                    // An item of undefined length: its elements until the item delimiter.
                    while offset + 8 <= bytes.count {
                        if UInt32(u16(offset)) << 16 | UInt32(u16(offset + 2)) == 0xFFFE_E00D { offset += 8; break }
                        _ = try next()
                    }
                } else {
                    offset += length
                }
            }
            throw Failure(description: "a sequence runs past the end of the file", fix: "the file is truncated; fetch it again")
        }

        func string(_ e: Element) -> String {
            String(decoding: bytes[e.value], as: UTF8.self).trimmingCharacters(in: CharacterSet(charactersIn: " \0"))
        }

        /// US (or an IS/DS string, as implicit files give no VR).
        func uint(_ e: Element) -> Int {
            if e.value.count == 2 && (e.vr.isEmpty || e.vr == "US" || e.vr == "SS") { return u16(e.value.lowerBound) }
            if e.value.count == 4 && (e.vr == "UL" || e.vr == "SL") { return u32(e.value.lowerBound) }
            return Int(string(e)) ?? 0
        }

        /// The first value of a DS (decimal string), as "a\b" multi-values give.
        func decimal(_ e: Element) -> Double? {
            Double(string(e).split(separator: "\\").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? "")
        }
    }
}

/// How stored values become 0–255: the window (centre, width) of the DICOM standard's VOI
/// LUT function LINEAR (PS3.3 C.11.2.1.2.1).
public enum DICOMWindow: Equatable, Sendable {
    /// The file's own window (0028,1050/1051); without one, the frame's minimum–maximum.
    case file
    case explicit(center: Double, width: Double)

    /// Named CT windows (Hounsfield units).
    public static let presets: [String: DICOMWindow] = [
        "ct-lung": .explicit(center: -600, width: 1500), "ct-abdomen": .explicit(center: 40, width: 400),
        "ct-bone": .explicit(center: 400, width: 1800), "ct-brain": .explicit(center: 40, width: 80),
        "ct-mediastinum": .explicit(center: 50, width: 350),
    ]

    /// The window that maps lo to 0 and hi to 255.
    static func range(_ lo: Double, _ hi: Double) -> DICOMWindow { .explicit(center: (lo + hi + 1) / 2, width: max(1, hi - lo + 1)) }

    /// Maps values to 8 bits: y = ((x − (c − ½)) / (w − 1) + ½)·255, clipped to 0…255, rounded.
    func apply(_ values: [Double], file: (center: Double?, width: Double?)) -> [UInt8] {
        var (c, w): (Double, Double)
        switch self {
        case .explicit(let center, let width): (c, w) = (center, width)
        case .file:
            if let fc = file.center, let fw = file.width, fw >= 1 { (c, w) = (fc, fw) } else {
                return Self.range(values.min() ?? 0, values.max() ?? 0).apply(values, file: file)
            }
        }
        let lowEdge = c - 0.5 - (w - 1) / 2, highEdge = c - 0.5 + (w - 1) / 2
        return values.map { x in
            if x <= lowEdge { return 0 }
            if x > highEdge { return 255 }
            let y = ((x - (c - 0.5)) / max(1e-9, w - 1) + 0.5) * 255
            return UInt8(max(0, min(255, y.rounded())))
        }
    }
}
