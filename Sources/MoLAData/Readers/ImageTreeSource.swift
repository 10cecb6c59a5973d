import Foundation
import MoLATensor

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

    /// Class folder names directly under `root`, sorted.
    static func classFolders(_ root: String) throws -> [String] {
        guard FileIO.isDirectory(root) else {
            throw DataError(file: root, "folder not found", fix: "check the root path (and the variables in it)")
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: root)
        return names.filter { !$0.hasPrefix(".") && FileIO.isDirectory(root + "/" + $0) }.sorted()
    }

    /// Every image file under `root`, sorted, with its class folder.
    static func listing(_ root: String) throws -> [(file: String, folder: String)] {
        var out: [(String, String)] = []
        for folder in try classFolders(root) {
            let dir = root + "/" + folder
            guard let e = FileManager.default.enumerator(atPath: dir) else { continue }
            var files: [String] = []
            while let rel = e.nextObject() as? String {
                let lower = rel.lowercased()
                if Self.extensions.contains(where: { lower.hasSuffix($0) }), !rel.split(separator: "/").contains(where: { $0.hasPrefix(".") }) {
                    files.append(rel)
                }
            }
            for f in files.sorted() { out.append((dir + "/" + f, folder)) }
        }
        return out
    }

    init(root: String, listing list: [(file: String, folder: String)], classes: [String],
         split: Manifest.SourceSpec.SplitRule) throws {
        path = root
        let fixed: Split? = { if case .fixed(let s) = split { return s } else { return nil } }()
        guard !list.isEmpty else {
            throw DataError(file: root, "no PNG or JPEG files in class folders under this root",
                            fix: "the layout is root/<class>/*.png (or .jpg); point root at the folder holding the class folders")
        }
        var index: [String: Int] = [:]
        for (i, c) in classes.enumerated() { index[c] = i }
        for folder in Set(list.map(\.folder)) where index[folder] == nil {
            throw DataError(file: root + "/" + folder, "class '\(folder)' (a folder, or a label in the labels table) is not one of the task's classes",
                            fix: "add '\(folder)' to the task's classes, or move the folder out of \(root) (or fix the table)")
        }
        files = list.map(\.file)
        records = list.map { SourceRecord(label: index[$0.folder]!, split: fixed, location: $0.file, problem: nil) }
    }

    func decode(_ range: Range<Int>, channels: Int) throws -> [Result<RawImage, DataError>] {
        var out = [Result<RawImage, DataError>](repeating: .failure(DataError(file: "", "")), count: range.count)
        out.withUnsafeMutableBufferPointer { buf in
            let results = buf.baseAddress!
            Parallel.forRanges(range.count) { part in
                for k in part {
                    let file = files[range.lowerBound + k]
                    do {
                        let data = try FileIO.read(file)
                        let img = try data.withUnsafeBytes { raw -> RawImage in
                            let jpeg = raw.count >= 2 && raw[0] == 0xFF && raw[1] == 0xD8
                            do {
                                return jpeg ? try JPEGCodec.decode(raw, channels: channels) : try PNGCodec.decode(raw, channels: channels)
                            } catch {
                                throw DataError(file: file, "not a readable \(jpeg ? "JPEG" : "PNG"): \(error)",
                                                fix: "replace or delete the file, or ingest with --skip-bad")
                            }
                        }
                        results[k] = .success(img)
                    } catch let e as DataError {
                        results[k] = .failure(e)
                    } catch {
                        results[k] = .failure(DataError(file: file, "\(error)"))
                    }
                }
            }
        }
        return out
    }
}
