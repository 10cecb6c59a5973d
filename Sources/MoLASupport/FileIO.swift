import Foundation

/// File helpers shared by readers and writers: whole-file reads with clear errors,
/// atomic writes (temporary name, then rename), and cheap change fingerprints.
public enum FileIO {
    /// Reads a file or throws a `DataError` naming it. Files over 256 MiB are memory-mapped;
    /// smaller ones are read (faulting in or unmapping maps costs more than a read).
    public static func read(_ path: String) throws -> Data {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            if errno == ENOENT { throw DataError(file: path, "file not found", fix: "check the path (and the variables in it)") }
            throw DataError(file: path, "cannot open: \(String(cString: strerror(errno)))", fix: "check the file's permissions")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw DataError(file: path, "cannot stat: \(String(cString: strerror(errno)))") }
        let size = Int(st.st_size)
        if size >= 256 << 20 {
            do { return try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) } catch {
                throw DataError(file: path, "cannot read: \(error.localizedDescription)", fix: "check the file's permissions")
            }
        }
        var data = Data(count: size)
        let got = data.withUnsafeMutableBytes { buf -> Int in
            var off = 0
            while off < size {
                let n = Foundation.read(fd, buf.baseAddress! + off, size - off)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                off += n
            }
            return off
        }
        guard got == size else { throw DataError(file: path, "cannot read: \(String(cString: strerror(errno)))") }
        return data
    }

    /// Writes `bytes` to `path` atomically: a reader sees the old file or the whole new one.
    /// A full disk is a `DiskFullError` saying how much the file needs.
    public static func writeAtomically(_ bytes: [UInt8], to path: String) throws {
        let tmp = temporaryName(for: path)
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw DataError(file: path, "cannot write: \(String(cString: strerror(errno)))",
                            fix: "check that the directory exists and is writable")
        }
        do {
            try bytes.withUnsafeBytes { try DiskSpace.write(fd, $0, path: path, what: URL(fileURLWithPath: path).lastPathComponent) }
            close(fd)
        } catch var e as DiskFullError {
            close(fd)
            unlink(tmp)
            e.needed = bytes.count
            throw e
        } catch {
            close(fd)
            unlink(tmp)
            throw error
        }
        try rename(tmp, path)
    }

    /// Appends `bytes` to `path` (created if missing) whole or not at all: on a full disk
    /// the file is cut back to its old length, so a log never ends in half a record.
    public static func append(_ bytes: [UInt8], to path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw DataError(file: path, "cannot open for appending: \(String(cString: strerror(errno)))", fix: "check the folder's permissions")
        }
        defer { close(fd) }
        let before = lseek(fd, 0, SEEK_END)
        do { try bytes.withUnsafeBytes { try DiskSpace.write(fd, $0, path: path, what: URL(fileURLWithPath: path).lastPathComponent) } } catch {
            ftruncate(fd, before)
            if var e = error as? DiskFullError { e.needed = bytes.count; throw e }
            throw error
        }
    }

    public static func writeAtomically(_ text: String, to path: String) throws {
        try writeAtomically(Array(text.utf8), to: path)
    }

    /// A temporary sibling name that no other process uses.
    public static func temporaryName(for path: String) -> String {
        let url = URL(fileURLWithPath: path)
        return url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
    }

    public static func rename(_ from: String, _ to: String) throws {
        guard Foundation.rename(from, to) == 0 else {
            let e = String(cString: strerror(errno))
            unlink(from)
            throw DataError(file: to, "cannot rename \(from) into place: \(e)", fix: "check permissions and free disk space")
        }
    }

    /// Bytes of the regular files under `folder` (0 when it does not exist).
    public static func folderBytes(_ folder: String) -> Int {
        guard let e = FileManager.default.enumerator(atPath: folder) else { return 0 }
        var total = 0
        while let name = e.nextObject() as? String {
            if let s = stamp(folder + "/" + name), !isDirectory(folder + "/" + name) { total += s.size }
        }
        return total
    }

    /// (size, modification time in ns) of a file, or nil when it does not exist.
    public static func stamp(_ path: String) -> (size: Int, mtime: Int)? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return (Int(st.st_size), Int(st.st_mtim.tv_sec) * 1_000_000_000 + Int(st.st_mtim.tv_nsec))
    }

    public static func isDirectory(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue
    }

    public static func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }
}
