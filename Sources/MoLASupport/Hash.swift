import Crypto
import Foundation

/// SHA-256 as lower-case hex, for checkpoints, configs and pipeline locks. The one place
/// that knows which library computes it.
public enum Hash {
    /// SHA-256 of data arriving in pieces (a file being written, a list of stamps).
    public struct Stream {
        private var state = SHA256()
        public init() {}
        public mutating func update(_ bytes: UnsafeRawBufferPointer) { state.update(bufferPointer: bytes) }
        public mutating func update(_ bytes: [UInt8]) { state.update(data: bytes) }
        public mutating func update(_ text: String) { state.update(data: Data(text.utf8)) }
        /// The digest as lower-case hex; the stream is spent.
        public func finalize() -> String { state.finalize().hex }
    }

    public static func sha256Hex(_ data: Data) -> String { SHA256.hash(data: data).hex }
    public static func sha256Hex(_ text: String) -> String { SHA256.hash(data: Data(text.utf8)).hex }
    public static func sha256Hex(_ bytes: [UInt8]) -> String { SHA256.hash(data: bytes).hex }

    /// Streams the file in 1 MiB reads: gigabyte files are not loaded whole.
    public static func sha256Hex(file path: String) throws -> String {
        guard let h = FileHandle(forReadingAtPath: path) else { throw DataError(file: path, "cannot open the file to hash it") }
        defer { try? h.close() }
        var hasher = SHA256()
        while let chunk = try h.read(upToCount: 1 << 20), !chunk.isEmpty { hasher.update(data: chunk) }
        return hasher.finalize().hex
    }
}

extension Sequence where Element == UInt8 {
    public var hex: String { map { String(format: "%02x", $0) }.joined() }
}

extension SHA256.Digest {
    var hex: String { Array(self).hex }
}
