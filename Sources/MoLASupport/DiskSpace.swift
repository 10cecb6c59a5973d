import Foundation

/// Free space on the disk that holds a path, and what a full disk says.
public enum DiskSpace {
    /// Bytes an unprivileged writer may still use on the file system holding `path` (or its
    /// nearest existing ancestor); nil if it cannot be asked.
    public static func available(at path: String) -> Int? {
        var url = URL(fileURLWithPath: path).standardized
        while !FileManager.default.fileExists(atPath: url.path) && url.path != "/" { url.deleteLastPathComponent() }
        var s = statvfs()
        guard statvfs(url.path, &s) == 0 else { return nil }
        return Int(s.f_bavail) * Int(s.f_frsize)
    }

    /// Throws a `DiskFullError` before anything is written when the disk holding `path` has
    /// less than `bytes` free.
    public static func require(_ bytes: Int, at path: String, for what: String, fix: String) throws {
        guard let free = available(at: path), free < bytes else { return }
        throw DiskFullError(path: path, what: what, needed: bytes, available: free, fix: fix)
    }

    /// Writes all of `bytes` to `fd` (the file `path`), naming a full disk as such.
    public static func write(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String, what: String) throws {
        var off = 0
        while off < bytes.count {
            let n = Foundation.write(fd, bytes.baseAddress! + off, bytes.count - off)
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                if n == 0 || errno == ENOSPC || errno == EDQUOT {
                    throw DiskFullError(path: path, what: what, needed: nil, available: available(at: path) ?? 0,
                                        fix: "free space on the disk holding \(path), or write elsewhere")
                }
                throw DataError(file: path, "cannot write: \(String(cString: strerror(errno)))", fix: "check the disk and the file's permissions")
            }
            off += n
        }
    }

    /// "12.3 MB" (decimal units, as `df -H` prints them).
    public static func human(_ bytes: Int) -> String {
        if bytes < 1_000_000 { return String(format: "%.1f kB", Double(bytes) / 1e3) }
        if bytes < 1_000_000_000 { return String(format: "%.1f MB", Double(bytes) / 1e6) }
        return String(format: "%.2f GB", Double(bytes) / 1e9)
    }
}

/// The disk filled (or would have) while writing `path`: what was being written, the space
/// it needs when known, what is free, and what to do.
public struct DiskFullError: MoLAError {
    public var path: String
    public var what: String
    public var needed: Int?
    public var available: Int
    public var fix: String

    public init(path: String, what: String, needed: Int?, available: Int, fix: String) {
        self.path = path
        self.what = what
        self.needed = needed
        self.available = available
        self.fix = fix
    }

    public var description: String {
        let need = needed.map { "it needs \(DiskSpace.human($0)), " } ?? ""
        return "\(path): no space left on the disk for \(what): \(need)\(DiskSpace.human(available)) free\n  fix: \(fix)"
    }
}
