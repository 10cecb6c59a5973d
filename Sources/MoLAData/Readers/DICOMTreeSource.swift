import Foundation
import MoLASupport

/// A folder tree of DICOM files, one folder per class: `root/<class>/**/*.dcm`, or files
/// without an extension that carry the `DICM` preamble (as scanners and PACS exports
/// write them). Each frame of a multi-frame file is a record, or only `frame` when chosen.
/// Grey frames go through the modality rescale (slope, intercept: Hounsfield units for
/// CT), then `window`, then MONOCHROME1 is inverted (its 0 is white).
final class DICOMTreeSource: ImageSource {
    let path: String
    let records: [SourceRecord]
    /// The file and frame of each record.
    let frames: [(file: String, frame: Int)]
    let window: DICOMWindow

    /// Every DICOM file under `root`'s class folders, sorted, with its class folder.
    static func listing(_ root: String) throws -> [(file: String, folder: String)] {
        try TreeListing.files(root) { rel, full in
            let name = rel.split(separator: "/").last.map(String.init) ?? rel
            return name.lowercased().hasSuffix(".dcm") || (!name.contains(".") && hasPreamble(full))
        }
    }

    static func hasPreamble(_ file: String) -> Bool {
        guard let h = FileHandle(forReadingAtPath: file) else { return false }
        defer { try? h.close() }
        guard let head = try? h.read(upToCount: 132), head.count == 132 else { return false }
        return head.suffix(4) == Data("DICM".utf8)
    }

    init(root: String, listing list: [(file: String, folder: String)], classes: [String], kind: LabelKind = .single, split: Manifest.SourceSpec.SplitRule,
         window: DICOMWindow, frame: Int?) throws {
        path = root
        self.window = window
        let fixed: Split? = { if case .fixed(let s) = split { return s } else { return nil } }()
        let index = try TreeListing.labels(list, classes: classes, kind: kind, root: root, what: "DICOM files",
                                           layout: "root/<class>/**/*.dcm (or extensionless files with the DICM preamble)")
        // Each file's frame count decides its records; an unreadable file is one bad record.
        var frames: [(String, Int)] = [], records: [SourceRecord] = []
        for (file, folder) in list {
            var count = 1, problem: String?, fix: String?
            do { count = try Self.read(file).frames } catch let e as DataError { (problem, fix) = (e.message, e.fix) }
            let chosen = frame.map { [$0] } ?? Array(0..<count)
            for f in chosen {
                var p = problem
                if p == nil, f >= count { p = "frame \(f) asked for, but the file has \(count)" }
                frames.append((file, f))
                records.append(SourceRecord(label: index[folder]!, split: fixed, location: count > 1 ? "\(file) frame \(f)" : file, problem: p, fix: fix))
            }
        }
        self.frames = frames
        self.records = records
    }

    static func read(_ file: String) throws -> DICOMImage {
        do { return try DICOMImage([UInt8](try FileIO.read(file))) } catch let e as DICOMImage.Failure {
            throw DataError(file: file, e.description, fix: e.fix)
        }
    }

    func decode(_ range: Range<Int>, channels: Int, threads: Int) throws -> [Result<RawImage, DataError>] {
        TreeListing.decode(range.count, threads: threads, file: { frames[range.lowerBound + $0].file }, read: Self.read) { d, k in
            ChannelConversion.convert(Self.image(d, frame: frames[range.lowerBound + k].frame, window: window), to: channels)
        }
    }

    /// One frame as 8-bit pixels: RGB as stored; grey rescaled, windowed, MONOCHROME1 inverted.
    static func image(_ d: DICOMImage, frame: Int, window: DICOMWindow) -> RawImage {
        if d.samplesPerPixel == 3 { return RawImage(height: d.rows, width: d.columns, channels: 3, pixels: d.rgb(frame: frame)) }
        var grey = window.apply(d.modalityValues(frame: frame), file: (d.windowCenter, d.windowWidth))
        if d.photometric == "MONOCHROME1" { grey = grey.map { 255 - $0 } }
        return RawImage(height: d.rows, width: d.columns, channels: 1, pixels: grey)
    }
}
