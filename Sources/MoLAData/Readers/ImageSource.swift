import MoLASupport
/// One labelled record of a source: its class index (a multi-label task's bit set of
/// labels, `LabelKind`), the split its file fixes (if any),
/// where it lives (for messages) and a problem found while indexing it.
struct SourceRecord {
    var label: Int
    var split: Split?
    var location: String
    var problem: String?
    /// How to repair the problem, when the reader knows better than "fix the record".
    var fix: String?
}

/// An opened input that a manifest names: its records are indexed (labels known) and
/// their pixels are decoded on demand, in order.
///
/// Four readers implement it: IDX, CSV pixel tables, NPZ archives and image (PNG, JPEG)
/// folder trees.
protocol ImageSource: AnyObject {
    /// The file or folder, as errors name it.
    var path: String { get }
    var records: [SourceRecord] { get }
    /// Decodes the records of `range` to 8-bit pixels with `channels` channels at the
    /// source's own size. Ranges arrive in increasing order. A record that cannot be
    /// decoded is a `.failure`; damage that makes the whole file unreadable throws.
    func decode(_ range: Range<Int>, channels: Int, threads: Int) throws -> [Result<RawImage, DataError>]
}

extension Manifest.SourceSpec {
    /// Opens the source; `classes` are the task's class names (for tree folder names),
    /// `labels` its label kind and `listing` the image files found under a tree's root
    /// (listed once, for the no-op check).
    func open(classes: [String], labels kind: LabelKind = .single, listing: [(file: String, folder: String)]) throws -> ImageSource {
        switch format {
        case .idx: return try IDXSource(imagesPath: paths[0], labelsPath: paths[1], split: split)
        case .csv:
            return try CSVSource(path: paths[0], shape: csvShape!, labelColumn: labelColumn, header: header,
                                 pixelMax: pixelMax, split: split)
        case .npz: return try NPZSource(path: paths[0], split: split, labels: kind == .multi ? classes.count : nil, at: at)
        case .pngTree, .jpegTree, .imageTree:
            return try ImageTreeSource(root: paths[0], listing: listing, classes: classes, kind: kind, split: split)
        case .dicomTree:
            return try DICOMTreeSource(root: paths[0], listing: listing, classes: classes, kind: kind, split: split, window: window, frame: frame)
        case .nifti:
            return try NIfTITreeSource(root: paths[0], listing: listing, classes: classes, kind: kind, split: split, window: window, slices: slices)
        }
    }

    /// The split a record is fixed to by this rule (nil: carved later).
    var fixedSplit: Split? {
        if case .fixed(let s) = split { return s }
        return nil
    }
}

/// Sources whose pixels are already in memory as N equally shaped images.
protocol InMemorySource: ImageSource {
    var imageShape: ImageShape { get }
    /// Record i's pixels start at `pixelOffset + i * imageShape.pixelCount`.
    var pixels: [UInt8] { get }
    var pixelOffset: Int { get }
}

extension InMemorySource {
    func decode(_ range: Range<Int>, channels: Int, threads: Int) throws -> [Result<RawImage, DataError>] {
        let n = imageShape.pixelCount
        return range.map { i in
            let img = RawImage(height: imageShape.height, width: imageShape.width, channels: imageShape.channels,
                               pixels: Array(pixels[(pixelOffset + i * n)..<(pixelOffset + (i + 1) * n)]))
            return .success(ChannelConversion.convert(img, to: channels))
        }
    }
}

final class IDXSource: InMemorySource {
    let path: String
    let records: [SourceRecord]
    let imageShape: ImageShape
    let pixels: [UInt8]
    let pixelOffset: Int

    init(imagesPath: String, labelsPath: String, split: Manifest.SourceSpec.SplitRule) throws {
        path = imagesPath
        let images = try IDXArray(path: imagesPath)
        let labels = try IDXArray(path: labelsPath)
        guard images.dims.count == 3 || (images.dims.count == 4 && [1, 3].contains(images.dims[3])) else {
            throw DataError(file: imagesPath, "expected images of N×H×W (or N×H×W×C), found \(images.dims)",
                            fix: "name the images file under 'images' and the labels file under 'labels'")
        }
        guard labels.dims.count == 1 else {
            throw DataError(file: labelsPath, "expected a 1-dimensional labels file, found \(labels.dims)",
                            fix: "name the labels file under 'labels' and the images file under 'images'")
        }
        guard images.dims[0] == labels.dims[0] else {
            throw DataError(file: labelsPath, "holds \(labels.dims[0]) labels but \(imagesPath) holds \(images.dims[0]) images",
                            fix: "pair the images file with its own labels file (train with train, t10k with t10k)")
        }
        imageShape = ImageShape(height: images.dims[1], width: images.dims[2], channels: images.dims.count == 4 ? images.dims[3] : 1)
        pixels = images.bytes
        pixelOffset = images.dataOffset
        let fixed: Split? = { if case .fixed(let s) = split { return s } else { return nil } }()
        records = labels.bytes[labels.dataOffset...].enumerated().map {
            SourceRecord(label: Int($1), split: fixed, location: "image \($0)", problem: nil)
        }
    }
}

final class CSVSource: InMemorySource {
    let path: String
    let records: [SourceRecord]
    let imageShape: ImageShape
    let pixels: [UInt8]
    let pixelOffset = 0

    init(path: String, shape: ImageShape, labelColumn: CSVPixelTable.LabelColumn, header: Bool?, pixelMax: Double,
         split: Manifest.SourceSpec.SplitRule) throws {
        self.path = path
        let table = try CSVPixelTable(path: path, pixelsPerRow: shape.pixelCount, labelColumn: labelColumn,
                                      pixelMax: pixelMax, header: header)
        imageShape = shape
        pixels = table.pixels
        let fixed: Split? = { if case .fixed(let s) = split { return s } else { return nil } }()
        records = (0..<table.rowCount).map { r in
            let line = table.lineNumbers[r]
            return SourceRecord(label: table.labels[r], split: fixed, location: "line \(line)", problem: table.problems[line])
        }
    }
}
