import Foundation
import MoLASupport

/// Checks a dataset folder end to end: every shard's size and SHA-256, every member's
/// CRC-32 and header, every label and task id, and every count against `index.json`.
public enum DatasetVerifier {
    public struct Report {
        public var shards = 0
        public var records = 0
        public var problems: [DataError] = []
        public var ok: Bool { problems.isEmpty }
    }

    public static func verify(directory: String) throws -> Report {
        let reader = try DatasetReader(directory: directory)
        let index = reader.index
        var report = Report()
        for split in Split.allCases {
            var counts = index.tasks.map { [Int](repeating: 0, count: $0.classes.count) }
            var splitReadable = true
            for shard in index.shards(of: split) {
                report.shards += 1
                let path = reader.directory + "/" + shard.file
                do {
                    let archive = try reader.open(shard, verifyHash: true)
                    var pixels = [UInt8](repeating: 0, count: shard.count * index.image.pixelCount)
                    try pixels.withUnsafeMutableBytes {
                        try reader.readMember(archive, shard, "images.npy", dtype: "|u1",
                                              shape: [shard.count, index.image.height, index.image.width, index.image.channels], into: $0)
                    }
                    var values = [[Int64]](repeating: [Int64](repeating: 0, count: shard.count), count: 2)
                    for (k, name) in ["labels.npy", "tasks.npy"].enumerated() {
                        try values[k].withUnsafeMutableBytes { try reader.readMember(archive, shard, name, dtype: "<i8", shape: [shard.count], into: $0) }
                    }
                    let labels = values[0].map { Int(Int64(littleEndian: $0)) }, tasks = values[1].map { Int(Int64(littleEndian: $0)) }
                    for i in 0..<shard.count {
                        guard index.tasks.indices.contains(tasks[i]) else {
                            throw DataError(file: path, location: "record \(i)", "task id \(tasks[i]) is outside 0…\(index.tasks.count - 1)")
                        }
                        guard index.tasks[tasks[i]].classes.indices.contains(labels[i]) else {
                            throw DataError(file: path, location: "record \(i)",
                                            "label \(labels[i]) is outside the classes of task '\(index.tasks[tasks[i]].name)'")
                        }
                        counts[tasks[i]][labels[i]] += 1
                    }
                    report.records += shard.count
                } catch let e as DataError {
                    report.problems.append(e)
                    splitReadable = false
                }
            }
            if splitReadable, let expected = index.split(split), expected.perClass != counts {
                report.problems.append(DataError(file: reader.directory + "/" + DatasetIndex.fileName,
                                                 location: "splits.\(split.rawValue)",
                                                 "per-class counts in the shards differ from the index",
                                                 fix: "re-run `mola-prep ingest --force` for this dataset"))
            }
        }
        return report
    }
}
