import Foundation

/// A NIfTI volume (`.nii`, `.nii.gz`; NIfTI-1 and NIfTI-2, either byte order), its values
/// scaled by `scl_slope`/`scl_inter` as NIfTI readers (nibabel's `get_fdata`) give them.
/// Data types: (u)int8, (u)int16, (u)int32, float32, float64.
struct NIfTIVolume {
    /// Sizes along x, y, z and t (1 where the volume has fewer dimensions).
    var dims: [Int]
    /// Scaled values, x fastest, then y, z, t.
    var values: [Double]
    var calMin = 0.0, calMax = 0.0

    struct Failure: Error, CustomStringConvertible {
        var description: String
        var fix: String
    }

    init(_ file: [UInt8]) throws {
        let bytes = file.count >= 2 && file[0] == 0x1F && file[1] == 0x8B
            ? try file.withUnsafeBytes { try Zlib.inflate($0, container: .gzip) } : file
        guard bytes.count >= 348 else { throw Failure(description: "too short for a NIfTI header (\(bytes.count) bytes)", fix: "the file is truncated; fetch it again") }
        func le32(_ o: Int) -> Int { Int(bytes[o]) | Int(bytes[o + 1]) << 8 | Int(bytes[o + 2]) << 16 | Int(bytes[o + 3]) << 24 }
        let sizeLE = le32(0)
        let swapped = sizeLE != 348 && sizeLE != 540
        let header = swapped ? Int(UInt32(sizeLE).byteSwapped) : sizeLE
        guard header == 348 || header == 540 else {
            throw Failure(description: "not a NIfTI file (header size \(sizeLE), expected 348 or 540)", fix: "check the file")
        }
        guard bytes.count >= header else { throw Failure(description: "truncated header", fix: "the file is truncated; fetch it again") }
        let big = swapped  // sizeof_hdr reads as 348 or 540 little-endian, or the file is big-endian
        func int(_ o: Int, _ n: Int) -> Int {
            var v = 0
            for k in 0..<n { v = v << 8 | Int(bytes[o + (big ? k : n - 1 - k)]) }
            return n < 8 && v >= 1 << (8 * n - 1) ? v - (1 << (8 * n)) : v  // signed
        }
        func float(_ o: Int, _ n: Int) -> Double {
            var raw: UInt64 = 0
            for k in 0..<n { raw = raw << 8 | UInt64(bytes[o + (big ? k : n - 1 - k)]) }
            return n == 4 ? Double(Float(bitPattern: UInt32(raw))) : Double(bitPattern: raw)
        }
        let two = header == 540
        let datatype = two ? int(12, 2) : int(70, 2)
        let dimOffset = two ? 16 : 40, dimBytes = two ? 8 : 2
        let rank = int(dimOffset, dimBytes)
        guard (1...7).contains(rank) else { throw Failure(description: "implausible dimension count \(rank)", fix: "check the file") }
        var dims = (1...4).map { $0 <= rank ? max(1, int(dimOffset + $0 * dimBytes, dimBytes)) : 1 }
        let damaged = Failure(description: "the header's dimensions or data offset cannot describe a volume", fix: "the header is damaged; fetch or re-export the file")
        if rank > 4 {
            guard let t = Limits.product([dims[3]] + (5...rank).map { max(1, int(dimOffset + $0 * dimBytes, dimBytes)) }) else { throw damaged }
            dims[3] = t
        }
        self.dims = dims
        let rawOffset = two ? Double(int(168, 8)) : float(108, 4)
        guard rawOffset.isFinite, rawOffset >= 0, rawOffset <= Double(bytes.count) else { throw damaged }
        let offset = Int(rawOffset)
        var slope = two ? float(176, 8) : float(112, 4), inter = two ? float(184, 8) : float(116, 4)
        if slope == 0 || !slope.isFinite { (slope, inter) = (1, 0) }
        if !inter.isFinite { inter = 0 }
        calMax = two ? float(192, 8) : float(124, 4)
        calMin = two ? float(200, 8) : float(128, 4)
        let kinds: [Int: (bytes: Int, float: Bool, signed: Bool)] = [
            2: (1, false, false), 256: (1, false, true), 4: (2, false, true), 512: (2, false, false),
            8: (4, false, true), 768: (4, false, false), 16: (4, true, true), 64: (8, true, true),
        ]
        guard let kind = kinds[datatype] else {
            throw Failure(description: "data type \(datatype) is not supported", fix: "convert the volume to (u)int8/16/32 or float32/64")
        }
        guard let count = Limits.product(dims), let dataBytes = Limits.product([count, kind.bytes]) else {
            throw Failure(description: "the header's dimensions \(dims.map(String.init).joined(separator: "×")) cannot be a volume",
                          fix: "the header is damaged; fetch or re-export the file")
        }
        let magic = String(decoding: bytes[(two ? 4 : 344)..<(two ? 7 : 347)], as: UTF8.self)
        guard magic == "n+1" || magic == "n+2" else {
            throw Failure(description: "a header-only NIfTI pair (\(magic)): the image is in a separate .img file", fix: "convert the pair to a single .nii")
        }
        guard offset >= header, dataBytes <= bytes.count - offset else {
            throw Failure(description: "the header says \(dims.map(String.init).joined(separator: "×")) of \(kind.bytes)-byte values from byte \(offset), but the file holds \(bytes.count) bytes",
                          fix: "the file is truncated or its header is wrong; fetch or re-export it")
        }
        values = (0..<count).map { i in
            let o = offset + i * kind.bytes
            let v: Double
            if kind.float { v = float(o, kind.bytes) } else if kind.signed { v = Double(int(o, kind.bytes)) } else {
                var u = 0
                for k in 0..<kind.bytes { u = u << 8 | Int(bytes[o + (big ? k : kind.bytes - 1 - k)]) }
                v = Double(u)
            }
            return v * slope + inter
        }
    }

    /// The 2-D slice `index` across `axis` (0 x, 1 y, 2 z) of volume `t`: the remaining
    /// axes in order are its rows and columns (z: rows x, columns y — numpy's
    /// `data[:, :, index]`).
    func slice(axis: Int, index: Int, t: Int) -> (rows: Int, columns: Int, values: [Double]) {
        let (nx, ny, nz) = (dims[0], dims[1], dims[2])
        let base = t * nx * ny * nz
        func at(_ x: Int, _ y: Int, _ z: Int) -> Double { values[base + x + nx * (y + ny * z)] }
        switch axis {
        case 0: return (ny, nz, (0..<(ny * nz)).map { at(index, $0 / nz, $0 % nz) })
        case 1: return (nx, nz, (0..<(nx * nz)).map { at($0 / nz, index, $0 % nz) })
        default: return (nx, ny, (0..<(nx * ny)).map { at($0 / ny, $0 % ny, index) })
        }
    }

    /// The window `file` means for a volume: its cal_min…cal_max when set, else the
    /// volume's own minimum…maximum (so every slice of a volume shares one contrast).
    func fileWindow(t: Int) -> DICOMWindow {
        if calMax > calMin { return .range(calMin, calMax) }
        let n = dims[0] * dims[1] * dims[2]
        let volume = values[(t * n)..<((t + 1) * n)]
        return .range(volume.min() ?? 0, volume.max() ?? 0)
    }
}
