import Crypto
import Foundation

/// SHA-256 as lower-case hex, for checkpoints, configs and pipeline locks.
public enum Hash {
    public static func sha256Hex(_ data: Data) -> String { SHA256.hash(data: data).hex }
    public static func sha256Hex(_ text: String) -> String { SHA256.hash(data: Data(text.utf8)).hex }

    /// Streams the file in 1 MiB reads: gigabyte files are not loaded whole.
    public static func sha256Hex(file path: String) throws -> String {
        guard let h = FileHandle(forReadingAtPath: path) else { throw DataError(file: path, "cannot open the file to hash it") }
        defer { try? h.close() }
        var hasher = SHA256()
        while let chunk = try h.read(upToCount: 1 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
        return hasher.finalize().hex
    }
}
