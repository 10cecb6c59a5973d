import Foundation
import MoLASupport

/// What the tree sources (images, DICOM, NIfTI) share: finding files under class folders
/// and checking that every class they name belongs to the task.
enum TreeListing {
    /// Class folder names directly under `root`, sorted.
    static func classFolders(_ root: String) throws -> [String] {
        guard FileIO.isDirectory(root) else {
            throw DataError(file: root, "folder not found", fix: "check the root path (and the variables in it)")
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: root)
        return names.filter { !$0.hasPrefix(".") && FileIO.isDirectory(root + "/" + $0) }.sorted()
    }

    /// Every file under `root`'s class folders (hidden folders skipped) that `keep(relative
    /// path, full path)` accepts, sorted within each folder, with its class folder.
    static func files(_ root: String, keep: (String, String) -> Bool) throws -> [(file: String, folder: String)] {
        var out: [(String, String)] = []
        for folder in try classFolders(root) {
            let dir = root + "/" + folder
            guard let e = FileManager.default.enumerator(atPath: dir) else { continue }
            var files: [String] = []
            while let rel = e.nextObject() as? String {
                if !rel.split(separator: "/").contains(where: { $0.hasPrefix(".") }), keep(rel, dir + "/" + rel) { files.append(rel) }
            }
            for f in files.sorted() { out.append((dir + "/" + f, folder)) }
        }
        return out
    }

    /// Each class name's index, after checking that the listing names only the task's
    /// classes and is not empty (`what`: the files expected, for the message). For a
    /// multi-label task each `|`-joined set of label names maps to its bit set.
    static func labels(_ list: [(file: String, folder: String)], classes: [String], kind: LabelKind = .single, root: String, what: String,
                       layout: String) throws -> [String: Int] {
        guard !list.isEmpty else {
            throw DataError(file: root, "no \(what) in class folders under this root", fix: "the layout is \(layout)")
        }
        var index: [String: Int] = [:]
        for (i, c) in classes.enumerated() { index[c] = i }
        if kind == .multi {
            var sets: [String: Int] = [:]
            for names in Set(list.map(\.folder)) {
                var bits: Int32 = 0
                for name in names.split(separator: TreeLabels.separator) {
                    guard let k = index[String(name)] else {
                        throw DataError(file: root, "label '\(name)' of the labels table is not one of the task's labels",
                                        fix: "name the table's columns after the task's classes: \(classes.joined(separator: ", "))")
                    }
                    bits |= 1 << Int32(k)
                }
                sets[names] = Int(bits)
            }
            return sets
        }
        for folder in Set(list.map(\.folder)) where index[folder] == nil {
            throw DataError(file: root + "/" + folder, "class '\(folder)' (a folder, or a label in the labels table) is not one of the task's classes",
                            fix: "add '\(folder)' to the task's classes, or move the folder out of \(root) (or fix the table)")
        }
        return index
    }

    /// Decodes `count` records on every thread: record k lives in `file(k)`, read with
    /// `read` (each thread keeps the last file it read, which the next frames or slices of
    /// a multi-record file share) and turned into pixels by `image`. A failure is the
    /// record's, named by its file.
    static func decode<File>(_ count: Int, threads: Int, file: (Int) -> String, read: (String) throws -> File,
                             image: (File, Int) throws -> RawImage) -> [Result<RawImage, DataError>] {
        var out = [Result<RawImage, DataError>](repeating: .failure(DataError(file: "", "")), count: count)
        out.withUnsafeMutableBufferPointer { buf in
            let results = buf.baseAddress!
            Parallel.forRanges(count, threads: threads) { part in
                var cached: (path: String, file: File)?
                for k in part {
                    let path = file(k)
                    do {
                        if cached?.path != path { cached = (path, try read(path)) }
                        results[k] = .success(try image(cached!.file, k))
                    } catch let e as DataError {
                        results[k] = .failure(e)
                    } catch {
                        results[k] = .failure(DataError(file: path, "\(error)"))
                    }
                }
            }
        }
        return out
    }
}
