import Foundation

/// Writes one shard: a standard `.npz` (zip, deflate) of `images.npy` (uint8 N×H×W×C),
/// `labels.npy` (int64 N, or N×L with a multi-label task: `LabelRows`) and `tasks.npy`
/// (int64 N), so `numpy.load` opens it as is.
///
/// Output bytes depend only on the records and the compression setting: members in fixed
/// order, fixed zip timestamps, deflate in fixed 1 MiB chunks whatever the thread count.
enum ShardWriter {
    static let chunkBytes = 1 << 20
    /// The images member's `.npy` header is always 128 bytes: a 4-D uint8 shape's
    /// dictionary is far shorter and numpy pads headers to multiples of 64. Sinks reserve
    /// it in front of the pixels, so the member is compressed without a copy.
    static let imagesHeaderBytes = 128

    /// Writes a shard. `imagesMember` holds `imagesHeaderBytes` of room followed by the
    /// pixels of `tasks.count` images; the header is written into that room. `labels` holds
    /// `rows.columns` values per image.
    static func write(imagesMember: UnsafeMutableRawBufferPointer, shape: ImageShape, labels: [Int64], rows: LabelRows, tasks: [Int64],
                      split: Split, to path: String, compression: Zlib.Compression) throws -> DatasetIndex.ShardInfo {
        let n = tasks.count
        precondition(imagesMember.count == imagesHeaderBytes + n * shape.pixelCount && labels.count == n * rows.columns)
        let zip = try ZipFileWriter(path: path)
        var members: [DatasetIndex.MemberInfo] = []
        func add(_ name: String, header: NPYHeader, member: UnsafeRawBufferPointer) throws {
            let crc = Zlib.crc32(member)
            let pieces = Zlib.deflateChunked(member, chunkSize: chunkBytes, compression: compression)
            try zip.add(name: name, method: 8, crc32: crc, size: member.count, pieces: pieces)
            let sizes = pieces.map(\.count)
            members.append(.init(name: name, dtype: header.descr, shape: header.shape, rawBytes: member.count,
                                 compressedBytes: sizes.reduce(0, +), crc32: crc, chunkBytes: chunkBytes, chunks: sizes))
        }
        let imagesHeader = NPYHeader(kind: .unsigned, itemSize: 1, shape: [n, shape.height, shape.width, shape.channels])
        let encoded = imagesHeader.encoded()
        precondition(encoded.count == imagesHeaderBytes)
        imagesMember.copyBytes(from: encoded)
        try add("images.npy", header: imagesHeader, member: UnsafeRawBufferPointer(imagesMember))
        for (name, values, dims) in [("labels.npy", labels, rows.shape(n)), ("tasks.npy", tasks, [n])] {
            let h = NPYHeader(kind: .signed, itemSize: 8, shape: dims)
            let member = h.encoded() + values.withUnsafeBytes { Array($0) }  // little-endian hosts only (x86-64, arm64)
            try member.withUnsafeBytes { try add(name, header: h, member: $0) }
        }
        let (bytes, sha) = try zip.finish()
        return .init(file: URL(fileURLWithPath: path).lastPathComponent, split: split, count: n,
                     rawBytes: members.reduce(0) { $0 + $1.rawBytes }, bytes: bytes, sha256: sha, members: members)
    }
}

/// Collects the records of one split and writes a shard whenever `shardBytes` of images
/// have accumulated.
final class ShardSink {
    let split: Split
    let shape: ImageShape
    let directory: String
    let compression: Zlib.Compression
    let perShard: Int
    let rows: LabelRows
    private var images: [UInt8] = []
    private var labels: [Int64] = []
    private var tasks: [Int64] = []
    private(set) var written: [DatasetIndex.ShardInfo] = []

    init(split: Split, shape: ImageShape, directory: String, shardBytes: Int, compression: Zlib.Compression, rows: LabelRows) {
        self.split = split
        self.rows = rows
        self.shape = shape
        self.directory = directory
        self.compression = compression
        perShard = max(1, shardBytes / shape.pixelCount)
        images = [UInt8](repeating: 0, count: ShardWriter.imagesHeaderBytes)
    }

    func append(_ pixels: UnsafeBufferPointer<UInt8>, label: Int, task: Int) throws {
        images.append(contentsOf: pixels)
        rows.append(label, task: task, to: &labels)
        tasks.append(Int64(task))
        if tasks.count == perShard { try flush() }
    }

    func flush() throws {
        guard !tasks.isEmpty else { return }
        let name = String(format: "%@-%05d.npz", split.rawValue, written.count)
        let info = try images.withUnsafeMutableBytes {
            try ShardWriter.write(imagesMember: $0, shape: shape, labels: labels, rows: rows, tasks: tasks, split: split,
                                  to: directory + "/" + name, compression: compression)
        }
        written.append(info)
        images.removeSubrange(ShardWriter.imagesHeaderBytes...)
        labels.removeAll(keepingCapacity: true)
        tasks.removeAll(keepingCapacity: true)
    }
}
