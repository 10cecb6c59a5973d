import CLibCrypto
import Foundation

/// SHA-256 as lower-case hex, for shards, checkpoints, configs and pipeline locks. The one
/// place that knows which library computes it: the system's libcrypto (OpenSSL), whose
/// SHA-256 uses the CPU's SHA extensions where there are some, and which costs the build
/// nothing (swift-crypto compiled BoringSSL on every fresh clone).
public enum Hash {
    /// SHA-256 of data arriving in pieces (a file being written, a list of stamps). A value:
    /// a copy goes on from the same state independently.
    public struct Stream {
        private var context = Context()
        public init() {}

        public mutating func update(_ bytes: UnsafeRawBufferPointer) {
            if !isKnownUniquelyReferenced(&context) { context = context.copy() }
            if let base = bytes.baseAddress, bytes.count > 0 { EVP_DigestUpdate(context.pointer, base, bytes.count) }
        }
        public mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }
        public mutating func update(_ text: String) { update(Array(text.utf8)) }

        /// The digest as lower-case hex (the stream itself is left as it was).
        public func finalize() -> String {
            let spent = context.copy()
            var digest = [UInt8](repeating: 0, count: 32)
            var length: UInt32 = 0
            EVP_DigestFinal_ex(spent.pointer, &digest, &length)
            return digest.prefix(Int(length)).hex
        }
    }

    /// An OpenSSL digest context, freed with its last reference.
    final class Context {
        let pointer: OpaquePointer
        init() {
            pointer = EVP_MD_CTX_new()
            EVP_DigestInit_ex(pointer, EVP_sha256(), nil)
        }
        private init(copying other: OpaquePointer) {
            pointer = EVP_MD_CTX_new()
            EVP_MD_CTX_copy_ex(pointer, other)
        }
        func copy() -> Context { Context(copying: pointer) }
        deinit { EVP_MD_CTX_free(pointer) }
    }

    public static func sha256Hex(_ bytes: UnsafeRawBufferPointer) -> String {
        var s = Stream()
        s.update(bytes)
        return s.finalize()
    }
    public static func sha256Hex(_ data: Data) -> String { data.withUnsafeBytes { sha256Hex($0) } }
    public static func sha256Hex(_ text: String) -> String { sha256Hex(Array(text.utf8)) }
    public static func sha256Hex(_ bytes: [UInt8]) -> String { bytes.withUnsafeBytes { sha256Hex($0) } }

    /// Streams the file in 1 MiB reads: gigabyte files are not loaded whole.
    public static func sha256Hex(file path: String) throws -> String {
        guard let h = FileHandle(forReadingAtPath: path) else { throw DataError(file: path, "cannot open the file to hash it") }
        defer { try? h.close() }
        var s = Stream()
        while let chunk = try h.read(upToCount: 1 << 20), !chunk.isEmpty { chunk.withUnsafeBytes { s.update($0) } }
        return s.finalize()
    }
}

extension Sequence where Element == UInt8 {
    public var hex: String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for b in self { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }
}
