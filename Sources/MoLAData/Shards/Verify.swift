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
        let rows = LabelRows(index.tasks)
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
                    var tasks = [Int64](repeating: 0, count: shard.count), raw = [Int64](repeating: 0, count: shard.count * rows.columns)
                    try tasks.withUnsafeMutableBytes { try reader.readMember(archive, shard, "tasks.npy", dtype: "<i8", shape: [shard.count], into: $0) }
                    try raw.withUnsafeMutableBytes { try reader.readMember(archive, shard, "labels.npy", dtype: "<i8", shape: rows.shape(shard.count), into: $0) }
                    for i in 0..<shard.count {
                        let t = Int(Int64(littleEndian: tasks[i]))
                        guard index.tasks.indices.contains(t) else {
                            throw DataError(file: path, location: "record \(i)", "task id \(t) is outside 0…\(index.tasks.count - 1)")
                        }
                        let row = raw[(i * rows.columns)..<((i + 1) * rows.columns)].map { Int(Int64(littleEndian: $0)) }
                        let task = index.tasks[t]
                        if task.labelKind == .multi {
                            // 0/1 per label, then 0 up to the row's width.
                            guard row.allSatisfy({ $0 == 0 || $0 == 1 }), !row[task.classes.count...].contains(1) else {
                                throw DataError(file: path, location: "record \(i)", "labels \(row) are not 0/1 for the \(task.classes.count) labels of task '\(task.name)'")
                            }
                            for k in task.classes.indices where row[k] == 1 { counts[t][k] += 1 }
                        } else {
                            guard task.classes.indices.contains(row[0]), row.dropFirst().allSatisfy({ $0 == -1 }) else {
                                throw DataError(file: path, location: "record \(i)",
                                                "label \(row.count == 1 ? "\(row[0])" : "\(row)") is outside the classes of task '\(task.name)'")
                            }
                            counts[t][row[0]] += 1
                        }
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
