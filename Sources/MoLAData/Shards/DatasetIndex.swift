import Foundation
import MoLASupport

/// `index.json`: everything about a prepared dataset a reader needs, in one file.
/// The README's "Formats" section documents every field.
public struct DatasetIndex: Codable, Equatable, Sendable {
    public static let schema = "mola-shards/1"
    public static let fileName = "index.json"

    public var schema: String
    public var name: String
    public var kind: Manifest.Kind
    public var toolVersion: String
    public var manifestSha256: String
    /// Hash of the manifest, tool version, options and every input file's path, size and
    /// modification time: when it is unchanged, re-ingesting is a no-op.
    public var inputFingerprint: String
    public var image: ImageShape
    public var compression: Zlib.Compression
    public var seed: UInt64
    public var tasks: [TaskInfo]
    public var splits: [String: SplitInfo]
    public var shards: [ShardInfo]
    public var skipped: SkippedInfo
    /// Set on one part of a partitioned ingest (`mola-prep ingest --part i/n`); absent on a
    /// whole or merged dataset.
    public var part: PartInfo?

    public struct PartInfo: Codable, Equatable, Sendable {
        public var index: Int
        public var count: Int
        /// The whole dataset's input fingerprint (every part shares it; the merge keeps it).
        public var datasetFingerprint: String
    }

    public struct TaskInfo: Codable, Equatable, Sendable {
        public var name: String
        /// Class names, or a multi-label task's label names.
        public var classes: [String]
        /// `multi` for a multi-label task (absent: single-label).
        public var labels: LabelKind?
        public var labelKind: LabelKind { labels ?? .single }

        public init(name: String, classes: [String], labels: LabelKind = .single) {
            self.name = name
            self.classes = classes
            self.labels = labels == .multi ? .multi : nil
        }
    }

    /// Columns of each record's row in `labels.npy`: 1 (shape N) when every task is
    /// single-label, else the most labels of a multi-label task (shape N×L).
    public var labelWidth: Int { tasks.filter { $0.labelKind == .multi }.map(\.classes.count).max() ?? 1 }
    public var hasMultiLabelTask: Bool { tasks.contains { $0.labelKind == .multi } }

    public struct SplitInfo: Codable, Equatable, Sendable {
        public var count: Int
        /// Records per task, in task order.
        public var perTask: [Int]
        /// Records per task and class: `perClass[task][class]` (for a multi-label task, the
        /// records with each label present).
        public var perClass: [[Int]]
    }

    public struct ShardInfo: Codable, Equatable, Sendable {
        public var file: String
        public var split: Split
        public var count: Int
        /// Uncompressed bytes of all members (the .npy files).
        public var rawBytes: Int
        /// Size of the shard file.
        public var bytes: Int
        public var sha256: String
        public var members: [MemberInfo]
    }

    /// One `.npy` member of a shard. Its deflate stream is made of independent chunks of
    /// `chunkBytes` uncompressed bytes (each but the last ends in a full flush) whose
    /// compressed sizes are `chunks`, so readers may inflate them in parallel.
    public struct MemberInfo: Codable, Equatable, Sendable {
        public var name: String
        public var dtype: String
        public var shape: [Int]
        public var rawBytes: Int
        public var compressedBytes: Int
        public var crc32: UInt32
        public var chunkBytes: Int
        public var chunks: [Int]
    }

    public struct SkippedInfo: Codable, Equatable, Sendable {
        public var count: Int
        /// The first skipped records (at most 1000), with the reason.
        public var records: [String]
    }

    public func split(_ s: Split) -> SplitInfo? { splits[s.rawValue] }
    public func shards(of s: Split) -> [ShardInfo] { shards.filter { $0.split == s } }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.keyEncodingStrategy = .convertToSnakeCase
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return e
    }()

    public func encoded() throws -> [UInt8] { Array(try Self.encoder.encode(self)) + [0x0A] }

    /// Reads `dir/index.json`; errors say what is wrong and how to rebuild.
    public static func read(directory dir: String) throws -> DatasetIndex {
        let path = dir + "/" + fileName
        guard FileIO.isDirectory(dir) else {
            throw DataError(file: dir, "dataset folder not found", fix: "run `mola-prep ingest <manifest>` to create it")
        }
        guard FileIO.exists(path) else {
            throw DataError(file: path, "missing: this folder is not a prepared dataset",
                            fix: "run `mola-prep ingest <manifest>` to create it")
        }
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        let index: DatasetIndex
        do { index = try d.decode(DatasetIndex.self, from: try FileIO.read(path)) } catch let e as DataError { throw e } catch {
            throw DataError(file: path, "unreadable index: \(error)", fix: "re-run `mola-prep ingest` to rebuild the dataset")
        }
        guard index.schema == schema else {
            throw DataError(file: path, "schema '\(index.schema)' is not '\(schema)'",
                            fix: "re-run `mola-prep ingest` with this version of mola-prep")
        }
        return index
    }
}
