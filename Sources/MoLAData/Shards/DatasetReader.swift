import Crypto
import Foundation
import MoLATensor

/// The records of one split held in memory: uint8 pixels (N×H×W×C), labels and task ids.
public struct SplitData: Sendable {
    public var shape: ImageShape
    public var images: [UInt8]
    public var labels: [Int32]
    public var tasks: [Int32]
    public var count: Int { labels.count }

    public init(shape: ImageShape, images: [UInt8], labels: [Int32], tasks: [Int32]) {
        self.shape = shape
        self.images = images
        self.labels = labels
        self.tasks = tasks
    }

    /// The records of the given tasks only, in their order.
    public func filter(tasks keep: Set<Int32>) -> SplitData {
        let ids = (0..<count).filter { keep.contains(tasks[$0]) }
        let n = shape.pixelCount
        var imgs = [UInt8](); imgs.reserveCapacity(ids.count * n)
        for i in ids { imgs.append(contentsOf: images[(i * n)..<((i + 1) * n)]) }
        return SplitData(shape: shape, images: imgs, labels: ids.map { labels[$0] }, tasks: ids.map { tasks[$0] })
    }
}

/// Opens a prepared dataset folder and reads its shards back.
public struct DatasetReader {
    public let directory: String
    public let index: DatasetIndex

    public init(directory: String) throws {
        self.directory = URL(fileURLWithPath: directory).standardized.path
        index = try DatasetIndex.read(directory: self.directory)
    }

    /// Loads every record of `split`. Each member's CRC-32 is checked as it is inflated;
    /// `verifyHashes` also re-hashes each shard file against its SHA-256.
    public func load(_ split: Split, verifyHashes: Bool = false) throws -> SplitData {
        let shards = index.shards(of: split)
        let n = shards.reduce(0) { $0 + $1.count }
        let px = index.image.pixelCount
        var images = [UInt8](repeating: 0, count: n * px)
        var labels = [Int32](repeating: 0, count: n)
        var tasks = [Int32](repeating: 0, count: n)
        var offset = 0
        for shard in shards {
            let archive = try open(shard, verifyHash: verifyHashes)
            try images.withUnsafeMutableBytes { dst in
                try readMember(archive, shard, "images.npy", dtype: "|u1",
                               shape: [shard.count, index.image.height, index.image.width, index.image.channels]) { data in
                    UnsafeMutableRawBufferPointer(rebasing: dst[(offset * px)..<((offset + shard.count) * px)]).copyMemory(from: data)
                }
            }
            for (name, target) in [("labels.npy", 0), ("tasks.npy", 1)] {
                try readMember(archive, shard, name, dtype: "<i8", shape: [shard.count]) { data in
                    for i in 0..<shard.count {
                        let v = Int32(truncatingIfNeeded: Int64(littleEndian: data.loadUnaligned(fromByteOffset: i * 8, as: Int64.self)))
                        if target == 0 { labels[offset + i] = v } else { tasks[offset + i] = v }
                    }
                }
            }
            offset += shard.count
        }
        return SplitData(shape: index.image, images: images, labels: labels, tasks: tasks)
    }

    /// Opens a shard after checking its size (and, if asked, its SHA-256) against the index.
    func open(_ shard: DatasetIndex.ShardInfo, verifyHash: Bool) throws -> ZipArchive {
        let path = directory + "/" + shard.file
        let rebuild = "re-run `mola-prep ingest` for this dataset (add --force to rebuild it)"
        guard let stamp = FileIO.stamp(path) else {
            throw DataError(file: path, "shard listed in index.json is missing", fix: rebuild)
        }
        guard stamp.size == shard.bytes else {
            throw DataError(file: path, "shard is \(stamp.size) bytes, index.json says \(shard.bytes) (truncated or replaced)", fix: rebuild)
        }
        let data = try FileIO.read(path)
        if verifyHash {
            let digest = SHA256.hash(data: data).hex
            guard digest == shard.sha256 else {
                throw DataError(file: path, "SHA-256 mismatch: index.json says \(shard.sha256), file hashes to \(digest)", fix: rebuild)
            }
        }
        return try ZipArchive(path: path, data: data)
    }

    /// Inflates one member (in parallel chunks when the index records them), checks its
    /// header against the expected dtype and shape, and hands the array data to `body`.
    func readMember(_ archive: ZipArchive, _ shard: DatasetIndex.ShardInfo, _ name: String, dtype: String, shape: [Int],
                    _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard let m = archive.member(name) else {
            throw DataError(file: archive.path, "member \(name) is missing", fix: "re-run `mola-prep ingest` for this dataset")
        }
        let info = shard.members.first { $0.name == name }
        var raw = [UInt8](repeating: 0, count: m.size)
        try raw.withUnsafeMutableBytes {
            try archive.extract(m, into: $0, chunkSizes: info?.chunks, chunkSize: info?.chunkBytes ?? 0)
        }
        try raw.withUnsafeBytes { bytes in
            let h: NPYHeader
            do { h = try NPYHeader.parse(bytes) } catch {
                throw DataError(file: archive.path, location: "member \(name)", "\(error)")
            }
            guard h.descr == dtype, h.shape == shape, !h.fortranOrder, h.headerLength + h.dataBytes == bytes.count else {
                throw DataError(file: archive.path, location: "member \(name)",
                                "holds \(h.descr) \(h.shape), index.json promises \(dtype) \(shape)",
                                fix: "re-run `mola-prep ingest` for this dataset")
            }
            try body(UnsafeRawBufferPointer(rebasing: bytes[h.headerLength...]))
        }
    }
}
