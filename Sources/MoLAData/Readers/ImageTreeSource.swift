import Foundation
import MoLASupport

/// A folder tree of images, one folder per class: `root/<class>/**/*.{png,jpg,jpeg}` (any
/// case). RadImageNet's `root/<modality>/<anatomy>/<class>/*.png` is this with root at an
/// anatomy folder, VLCS's and PACS's `domain/<class>/*.jpg` with root at a domain. Each
/// file is decoded by its bytes (PNG signature or JPEG start-of-image), whatever its name
/// says. Files are taken in sorted path order, so ingest is deterministic.
final class ImageTreeSource: ImageSource {
    static let extensions = [".png", ".jpg", ".jpeg"]
    let path: String
    let records: [SourceRecord]
    let files: [String]

    /// Every image file under `root`, sorted, with its class folder.
    static func listing(_ root: String) throws -> [(file: String, folder: String)] {
        try TreeListing.files(root) { rel, _ in
            let lower = rel.lowercased()
            return Self.extensions.contains { lower.hasSuffix($0) }
        }
    }

    init(root: String, listing list: [(file: String, folder: String)], classes: [String], kind: LabelKind = .single,
         split: Manifest.SourceSpec.SplitRule) throws {
        path = root
        let fixed: Split? = { if case .fixed(let s) = split { return s } else { return nil } }()
        let index = try TreeListing.labels(list, classes: classes, kind: kind, root: root, what: "PNG or JPEG files",
                                           layout: "root/<class>/*.png (or .jpg); point root at the folder holding the class folders")
        files = list.map(\.file)
        records = list.map { SourceRecord(label: index[$0.folder]!, split: fixed, location: $0.file, problem: nil) }
    }

    func decode(_ range: Range<Int>, channels: Int, threads: Int) throws -> [Result<RawImage, DataError>] {
        TreeListing.decode(range.count, threads: threads, file: { files[range.lowerBound + $0] }, read: { try FileIO.read($0) }) { data, k in
            let file = files[range.lowerBound + k]
            return try data.withUnsafeBytes { raw -> RawImage in
                let jpeg = raw.count >= 2 && raw[0] == 0xFF && raw[1] == 0xD8
                do {
                    return jpeg ? try JPEGCodec.decode(raw, channels: channels) : try PNGCodec.decode(raw, channels: channels)
                } catch {
                    throw DataError(file: file, "not a readable \(jpeg ? "JPEG" : "PNG"): \(error)",
                                    fix: "replace or delete the file, or ingest with --skip-bad")
                }
            }
        }
    }
}
