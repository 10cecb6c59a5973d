import MoLASupport
/// IDX files (the MNIST family: `*-images-idx3-ubyte[.gz]`, `*-labels-idx1-ubyte[.gz]`):
/// a big-endian header of magic (0, 0, type, dims) and dimension sizes, then the data.
public struct IDXArray {
    public var dims: [Int]
    /// The whole file; the data starts at `dataOffset` (kept in place, not copied).
    public var bytes: [UInt8]
    public var dataOffset: Int

    /// Reads an unsigned-byte IDX file, raw or gzip-compressed.
    public init(path: String) throws {
        let bytes = try FileIO.readMaybeGzip(path)
        self.bytes = bytes
        func fail(_ s: String) -> DataError {
            DataError(file: path, s, fix: "the file is not an IDX file or is truncated; reinstall or download it again")
        }
        guard bytes.count >= 4, bytes[0] == 0, bytes[1] == 0 else { throw fail("not an IDX file (bad magic)") }
        guard bytes[2] == 0x08 else {
            throw DataError(file: path, "IDX data type 0x\(String(bytes[2], radix: 16)) is not supported (only unsigned bytes, 0x08)")
        }
        let n = Int(bytes[3])
        guard n >= 1, n <= 4, bytes.count >= 4 + 4 * n else { throw fail("bad IDX header") }
        dims = (0..<n).map { i in
            (0..<4).reduce(0) { $0 << 8 | Int(bytes[4 + 4 * i + $1]) }
        }
        let have = bytes.count - 4 - 4 * n
        guard let expected = Limits.product(dims), have == expected else {
            throw fail("header promises \(dims.map(String.init).joined(separator: "×")) = \(Limits.product(dims).map(String.init) ?? "more than 2^63") bytes of data, file holds \(have)")
        }
        dataOffset = 4 + 4 * n
    }
}
