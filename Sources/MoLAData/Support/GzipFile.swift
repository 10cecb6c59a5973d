import Foundation
import MoLASupport

extension FileIO {
    /// Reads a file, inflating it when it is gzip-compressed.
    public static func readMaybeGzip(_ path: String) throws -> [UInt8] {
        let data = try read(path)
        return try data.withUnsafeBytes { raw in
            guard Zlib.isGzip(raw) else { return Array(raw.bindMemory(to: UInt8.self)) }
            do { return try Zlib.inflate(raw, container: .gzip) } catch {
                throw DataError(file: path, "cannot gunzip: \(error)",
                                fix: "the file is truncated or corrupt; reinstall or download it again")
            }
        }
    }
}
