import Foundation
import MoLASupport

/// Content hashes of deps and outs. Files are streamed (never read whole) and remembered by
/// (path, size, mtime, inode) in a cache file, so unchanged gigabytes are not re-read; a
/// directory's hash covers the names and content hashes of every file under it.
/// Unchecked Sendable: pipeline stages hash on several threads; `cache` and `dirty` are
/// touched only under `lock`.
public final class ContentHasher: @unchecked Sendable {
    struct Stamp: Codable, Equatable { var size: Int; var mtime: Double; var inode: UInt64; var sha256: String }
    let cacheFile: String
    private var cache: [String: Stamp]
    private var dirty = false
    private let lock = NSLock()

    public init(cacheFile: String) {
        self.cacheFile = cacheFile
        cache = (try? JSONDecoder().decode([String: Stamp].self, from: FileIO.read(cacheFile))) ?? [:]
    }

    /// nil when the path does not exist.
    public func hash(_ path: String) throws -> String? {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { return nil }
        if !isDir.boolValue { return try fileHash(path) }
        guard let e = FileManager.default.enumerator(atPath: path) else { return nil }
        var lines: [String] = []
        while let rel = e.nextObject() as? String {
            // Hidden files (temporary folders, editor litter) are not content.
            if rel.split(separator: "/").contains(where: { $0.hasPrefix(".") }) { continue }
            var d: ObjCBool = false
            let full = path + "/" + rel
            if FileManager.default.fileExists(atPath: full, isDirectory: &d), !d.boolValue { lines.append(rel + " " + (try fileHash(full))) }
        }
        return Hash.sha256Hex(lines.sorted().joined(separator: "\n"))
    }

    func fileHash(_ path: String) throws -> String {
        var st = stat()
        guard stat(path, &st) == 0 else { throw DataError(file: path, "cannot read the file's status") }
        let mtime = Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9
        let key = URL(fileURLWithPath: path).standardized.path
        lock.lock()
        if let c = cache[key], c.size == Int(st.st_size), c.mtime == mtime, c.inode == UInt64(st.st_ino) { lock.unlock(); return c.sha256 }
        lock.unlock()
        let h = try Hash.sha256Hex(file: path)
        lock.lock()
        cache[key] = Stamp(size: Int(st.st_size), mtime: mtime, inode: UInt64(st.st_ino), sha256: h)
        dirty = true
        lock.unlock()
        return h
    }

    public func save() {
        lock.lock(); defer { lock.unlock() }
        guard dirty, let data = try? JSONEncoder().encode(cache) else { return }
        try? FileIO.writeAtomically([UInt8](data), to: cacheFile)
        dirty = false
    }
}
