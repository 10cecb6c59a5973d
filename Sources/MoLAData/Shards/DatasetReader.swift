import Foundation
import MoLASupport

/// The records of one split held in memory: uint8 pixels (N×H×W×C), labels (a class
/// index, or a multi-label task's bit set: `LabelKind`) and task ids.
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
        let px = index.image.pixelCount
        // Sizes from index.json are checked against the shard files before anything is
        // allocated: a damaged index must not claim memory its shards cannot fill.
        for shard in shards {
            let path = directory + "/" + shard.file
            let size = FileIO.stamp(path)?.size
            guard size == shard.bytes else { continue }  // `open` names that damage
            guard let bytes = Limits.product([shard.count, px]), shard.count >= 0, Limits.inflatable(bytes, from: shard.bytes) else {
                throw DataError(file: directory + "/" + DatasetIndex.fileName,
                                "shard \(shard.file) is listed with \(shard.count) images of \(px) bytes, more than its \(shard.bytes) bytes can hold",
                                fix: "re-run `mola-prep ingest` for this dataset (add --force to rebuild it)")
            }
        }
        let n = shards.reduce(0) { $0 + $1.count }
        let rows = LabelRows(index.tasks)
        var labels = [Int32](repeating: 0, count: n)
        var tasks = [Int32](repeating: 0, count: n)
        // Every byte is written by the shards (or the array is dropped on error): no zero-fill.
        let images = try [UInt8](unsafeUninitializedCapacity: n * px) { buf, count in
            var offset = 0
            for shard in shards {
                let archive = try open(shard, verifyHash: verifyHashes)
                let dst = UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(buf)[(offset * px)..<((offset + shard.count) * px)])
                try readMember(archive, shard, "images.npy", dtype: "|u1",
                               shape: [shard.count, index.image.height, index.image.width, index.image.channels], into: dst)
                // Tasks first: a multi-label row is read by its task's kind.
                var taskIDs = [Int64](repeating: 0, count: shard.count)
                try taskIDs.withUnsafeMutableBytes { try readMember(archive, shard, "tasks.npy", dtype: "<i8", shape: [shard.count], into: $0) }
                var raw = [Int64](repeating: 0, count: shard.count * rows.columns)
                try raw.withUnsafeMutableBytes { try readMember(archive, shard, "labels.npy", dtype: "<i8", shape: rows.shape(shard.count), into: $0) }
                raw.withUnsafeBufferPointer { values in
                    for i in 0..<shard.count {
                        let task = Int(truncatingIfNeeded: Int64(littleEndian: taskIDs[i]))
                        tasks[offset + i] = Int32(truncatingIfNeeded: task)
                        labels[offset + i] = rows.label(values.baseAddress! + i * rows.columns, task: task)
                    }
                }
                offset += shard.count
            }
            count = n * px
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
            let digest = Hash.sha256Hex(data)
            guard digest == shard.sha256 else {
                throw DataError(file: path, "SHA-256 mismatch: index.json says \(shard.sha256), file hashes to \(digest)", fix: rebuild)
            }
        }
        return try ZipArchive(path: path, data: data)
    }

    /// Inflates one member's array data into `output` (in parallel chunks when the index
    /// records them) after checking its .npy header against the expected dtype and shape.
    func readMember(_ archive: ZipArchive, _ shard: DatasetIndex.ShardInfo, _ name: String, dtype: String, shape: [Int],
                    into output: UnsafeMutableRawBufferPointer) throws {
        guard let m = archive.member(name) else {
            throw DataError(file: archive.path, "member \(name) is missing", fix: "re-run `mola-prep ingest` for this dataset")
        }
        let info = shard.members.first { $0.name == name }
        let mismatch = DataError(file: archive.path, location: "member \(name)",
                                 "does not hold the \(dtype) \(shape) array index.json promises",
                                 fix: "re-run `mola-prep ingest --force` for this dataset")
        let expected = NPYHeader(kind: dtype.contains("u") ? .unsigned : .signed, itemSize: dtype.contains("8") ? 8 : 1, shape: shape)
        let headerLength = expected.encoded().count
        guard m.size == headerLength + output.count else { throw mismatch }
        let head = try archive.extract(m, skip: headerLength, into: output, chunkSizes: info?.chunks, chunkSize: info?.chunkBytes ?? 0)
        let h: NPYHeader
        do { h = try head.withUnsafeBytes { try NPYHeader.parse($0) } } catch { throw mismatch }
        guard h.descr == dtype, h.shape == shape, !h.fortranOrder, h.headerLength == headerLength else { throw mismatch }
    }
}
