import Foundation
import MoLASupport

/// A `.npz` archive. MedMNIST archives hold `train_images`, `train_labels`, `val_*` and
/// `test_*` and so carry their own splits; a plain archive with `images` and `labels`
/// feeds the split the manifest names. Images are uint8 N×H×W or N×H×W×C; labels are
/// integers N or N×1, or for a multi-label task N×L of 0/1 (ChestMNIST's 14 findings).
/// Large members are inflated as a stream, one batch at a time.
final class NPZSource: ImageSource {
    struct Part {
        var split: Split?
        var images: ZipArchive.Member
        var header: NPYHeader
        var first: Int  // index of the part's first record
        var count: Int
    }

    let path: String
    let archive: ZipArchive
    private(set) var records: [SourceRecord] = []
    private var parts: [Part] = []
    private var stream: ZipMemberStream?
    private var streamPart = -1
    /// Whole images member of part `fortranPart`, for the rare Fortran-ordered array
    /// (its records are not contiguous, so it cannot be streamed).
    private var fortranCache: [UInt8] = []
    private var fortranPart = -1

    /// A multi-label task's label count (nil: single-label).
    let multiLabels: Int?

    init(path: String, split: Manifest.SourceSpec.SplitRule, labels multiLabels: Int? = nil, at: ConfigValue) throws {
        self.path = path
        self.multiLabels = multiLabels
        archive = try ZipArchive(path: path)
        let names = archive.members.map(\.name)
        let prefixed = Split.allCases.filter { names.contains("\($0.rawValue)_images.npy") }
        var layout: [(Split?, String)]
        if !prefixed.isEmpty {
            guard split == .fromArchive else {
                throw at.error("\(path) carries its own splits (\(prefixed.map { $0.rawValue + "_images" }.joined(separator: ", ")))",
                               fix: "remove the 'split' key from this source")
            }
            layout = prefixed.map { ($0, "\($0.rawValue)_") }
        } else if names.contains("images.npy") {
            switch split {
            case .fixed(let s): layout = [(s, "")]
            case .carve: layout = [(nil, "")]
            case .fromArchive:
                throw at.error("\(path) has no train_/val_/test_ arrays, so the manifest must say its split",
                               fix: "add split: train (or val, test, or a carve such as {test: 0.2})")
            }
        } else {
            throw DataError(file: path, "found neither train_images/train_labels (MedMNIST) nor images/labels arrays; members: \(names.joined(separator: ", "))",
                            fix: "save the arrays as train_images, train_labels, val_…, test_… or as images and labels")
        }
        for (split, prefix) in layout {
            try addPart(split: split, prefix: prefix)
        }
    }

    private func addPart(split: Split?, prefix: String) throws {
        let imgName = "\(prefix)images.npy", lblName = "\(prefix)labels.npy"
        guard let img = archive.member(imgName) else { throw DataError(file: path, "member \(imgName) is missing") }
        guard let lbl = archive.member(lblName) else {
            throw DataError(file: path, "member \(lblName) is missing", fix: "every images array needs its labels array")
        }
        let imgHeader = try header(img)
        guard imgHeader.kind == .unsigned, imgHeader.itemSize == 1 else {
            throw DataError(file: path, location: "member \(imgName)", "images must be uint8, found \(imgHeader.descr)",
                            fix: "convert with images.astype(numpy.uint8) after scaling to 0-255")
        }
        let s = imgHeader.shape
        guard s.count == 3 || (s.count == 4 && [1, 3, 4].contains(s[3])) else {
            throw DataError(file: path, location: "member \(imgName)", "images must be N×H×W or N×H×W×C (C = 1, 3, 4), found \(s)")
        }
        let labelBytes = try archive.extract(lbl)
        let lh = try labelBytes.withUnsafeBytes { try NPYHeader.parse($0) }
        guard lh.shape.first == s[0] else {
            throw DataError(file: path, location: "member \(lblName)", "holds \(lh.shape.first ?? 0) labels for \(s[0]) images",
                            fix: "the labels and images arrays must have the same first dimension")
        }
        let first = records.count
        let values = lh.shape.reduce(1, *)
        guard labelBytes.count >= lh.headerLength + values * lh.itemSize else {
            throw DataError(file: path, location: "member \(lblName)", "holds fewer bytes than its \(lh.shape) array needs (truncated)",
                            fix: "re-create or re-download the archive")
        }
        if let l = multiLabels {
            guard lh.shape.count == 2 || (l == 1 && lh.shape.count == 1), lh.shape.count == 1 || lh.shape[1] == l else {
                throw DataError(file: path, location: "member \(lblName)", "labels are \(lh.shape), the multi-label task has \(l) labels (N×\(l) expected)",
                                fix: "list one class name per label column under the task's classes")
            }
            labelBytes.withUnsafeBytes { raw in
                let data = UnsafeRawBufferPointer(rebasing: raw[lh.headerLength...])
                for i in 0..<s[0] {
                    let row = (0..<l).map { lh.integer(data, lh.fortranOrder ? i + s[0] * $0 : i * l + $0) }
                    let bad = row.first { $0 != 0 && $0 != 1 }
                    records.append(SourceRecord(label: Int(LabelKind.bitSet(row)), split: split, location: "\(imgName)[\(i)]",
                                                problem: bad.map { "label value \($0) is not 0 or 1" }))
                }
            }
            parts.append(Part(split: split, images: img, header: imgHeader, first: first, count: s[0]))
            return
        }
        guard lh.shape.count == 1 || (lh.shape.count == 2 && lh.shape[1] == 1) else {
            throw DataError(file: path, location: "member \(lblName)", "labels are \(lh.shape): \(lh.shape.count == 2 ? "\(lh.shape[1]) labels per image" : "not one label per image")",
                            fix: lh.shape.count == 2 ? "set `labels: multi` on the task and list its \(lh.shape[1]) label names under classes" : "save labels as an N or N×1 array")
        }
        labelBytes.withUnsafeBytes { raw in
            let data = UnsafeRawBufferPointer(rebasing: raw[lh.headerLength...])
            for i in 0..<s[0] {
                let v = lh.integer(data, i)
                records.append(SourceRecord(label: v, split: split, location: "\(imgName)[\(i)]",
                                            problem: v < 0 && lh.kind == .float ? "label is not a whole number" : nil))
            }
        }
        parts.append(Part(split: split, images: img, header: imgHeader, first: first, count: s[0]))
    }

    /// Reads just the .npy header at the start of a member.
    private func header(_ m: ZipArchive.Member) throws -> NPYHeader {
        let s = archive.stream(m)
        var head = [UInt8](repeating: 0, count: min(m.size, 4096))
        do {
            try head.withUnsafeMutableBytes { try s.read(into: $0) }
            return try head.withUnsafeBytes { try NPYHeader.parse($0) }
        } catch let e as NPYFailure {
            throw DataError(file: path, location: "member \(m.name)", e.message)
        }
    }

    func decode(_ range: Range<Int>, channels: Int, threads: Int) throws -> [Result<RawImage, DataError>] {
        var out: [Result<RawImage, DataError>] = []
        out.reserveCapacity(range.count)
        for i in range {
            let p = parts.lastIndex { $0.first <= i }!
            let part = parts[p]
            let s = part.header.shape
            let (h, w, c) = (s[1], s[2], s.count == 4 ? s[3] : 1)
            var pixels = [UInt8](repeating: 0, count: h * w * c)
            if part.header.fortranOrder {
                try readFortran(p, record: i - part.first, into: &pixels)
            } else {
                if streamPart != p {
                    stream = archive.stream(part.images)
                    streamPart = p
                    var skip = [UInt8](repeating: 0, count: part.header.headerLength)
                    try skip.withUnsafeMutableBytes { try stream!.read(into: $0) }
                }
                let want = part.header.headerLength + (i - part.first) * pixels.count
                precondition(stream!.produced == want, "NPZ records must be decoded in order")
                try pixels.withUnsafeMutableBytes { try stream!.read(into: $0) }
            }
            let img = RawImage(height: h, width: w, channels: c, pixels: pixels)
            out.append(.success(ChannelConversion.convert(img, to: channels)))
        }
        return out
    }

    private func readFortran(_ p: Int, record: Int, into pixels: inout [UInt8]) throws {
        let part = parts[p]
        if fortranPart != p {
            fortranCache = try archive.extract(part.images)
            fortranPart = p
        }
        let s = part.header.shape
        let (n, h, w, c) = (s[0], s[1], s[2], s.count == 4 ? s[3] : 1)
        let base = part.header.headerLength
        for y in 0..<h { for x in 0..<w { for ch in 0..<c {
            pixels[(y * w + x) * c + ch] = fortranCache[base + record + n * (y + h * (x + w * ch))]
        } } }
    }
}
