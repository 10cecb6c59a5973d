import Foundation
import MoLASupport

/// What `mola-prep inspect` reports: counts per split, task and class, the image shape,
/// bytes on disk and how well the shards compress.
public struct DatasetSummary: Codable {
    public struct TaskCounts: Codable {
        public var name: String
        public var count: Int
        public var perClass: [String: Int]
    }
    public struct SplitSummary: Codable {
        public var count: Int
        public var shards: Int
        public var tasks: [TaskCounts]
    }
    public var name: String
    public var kind: Manifest.Kind
    public var image: ImageShape
    public var splits: [String: SplitSummary]
    public var bytesOnDisk: Int
    public var rawBytes: Int
    public var compressionRatio: Double
    public var skipped: Int

    public init(_ index: DatasetIndex, directory: String) {
        name = index.name
        kind = index.kind
        image = index.image
        var splits: [String: SplitSummary] = [:]
        for split in Split.allCases {
            guard let s = index.split(split) else { continue }
            let tasks = index.tasks.enumerated().map { t, task in
                TaskCounts(name: task.name, count: s.perTask[t],
                           perClass: Dictionary(uniqueKeysWithValues: zip(task.classes, s.perClass[t])))
            }
            splits[split.rawValue] = SplitSummary(count: s.count, shards: index.shards(of: split).count, tasks: tasks)
        }
        self.splits = splits
        let files = index.shards.map(\.file) + [DatasetIndex.fileName, "manifest.yaml"]
        bytesOnDisk = files.reduce(0) { $0 + (FileIO.stamp(directory + "/" + $1)?.size ?? 0) }
        rawBytes = index.shards.reduce(0) { $0 + $1.rawBytes }
        let compressed = index.shards.reduce(0) { $0 + $1.bytes }
        compressionRatio = compressed > 0 ? Double(rawBytes) / Double(compressed) : 1
        skipped = index.skipped.count
    }

    /// A human-readable table.
    public func text(index: DatasetIndex) -> String {
        var out = "dataset \(name) (\(kind.rawValue)), images \(image)\n"
        out += String(format: "on disk %@, uncompressed %@, compression ratio %.2f\n",
                      Self.bytes(bytesOnDisk), Self.bytes(rawBytes), compressionRatio)
        if skipped > 0 { out += "skipped records: \(skipped) (see index.json)\n" }
        for split in Split.allCases {
            guard let s = splits[split.rawValue] else { continue }
            out += "\n\(split.rawValue): \(s.count) images in \(s.shards) shard(s)\n"
            for (t, task) in s.tasks.enumerated() {
                let classes = index.tasks[t].classes.map { "\($0)=\(task.perClass[$0] ?? 0)" }.joined(separator: " ")
                out += "  \(task.name): \(task.count)   \(classes)\n"
            }
        }
        return out
    }

    static func bytes(_ n: Int) -> String {
        n >= 1 << 30 ? String(format: "%.2f GiB", Double(n) / Double(1 << 30))
            : n >= 1 << 20 ? String(format: "%.1f MiB", Double(n) / Double(1 << 20))
            : String(format: "%.1f KiB", Double(n) / 1024)
    }
}

/// A PNG grid of samples: one row per task, up to `perRow` images (the first of each class
/// first, so every class shows), scaled up so small images stay visible.
public enum ContactSheet {
    public static func write(_ data: SplitData, index: DatasetIndex, perRow: Int, to path: String) throws {
        let shape = data.shape
        let scale = max(1, 48 / max(shape.height, shape.width))
        let (cellH, cellW, gap) = (shape.height * scale, shape.width * scale, 2)
        let rows = index.tasks.count
        let width = perRow * (cellW + gap) + gap, height = rows * (cellH + gap) + gap
        var pixels = [UInt8](repeating: 128, count: width * height * shape.channels)
        for t in 0..<rows {
            // Round-robin over classes (a multi-label task: over label sets) so each class
            // appears before any repeats.
            var byClass: [Int32: [Int]] = [:]
            for i in 0..<data.count where data.tasks[i] == Int32(t) {
                if byClass[data.labels[i], default: []].count < perRow { byClass[data.labels[i], default: []].append(i) }
            }
            var picks: [Int] = []
            var round = 0
            while picks.count < perRow, byClass.values.contains(where: { $0.count > round }) {
                for c in byClass.keys.sorted() where byClass[c]!.count > round && picks.count < perRow {
                    picks.append(byClass[c]![round])
                }
                round += 1
            }
            for (col, i) in picks.enumerated() {
                let x0 = gap + col * (cellW + gap), y0 = gap + t * (cellH + gap)
                for y in 0..<cellH {
                    for x in 0..<cellW {
                        for c in 0..<shape.channels {
                            let src = i * shape.pixelCount + ((y / scale) * shape.width + x / scale) * shape.channels + c
                            pixels[((y0 + y) * width + x0 + x) * shape.channels + c] = data.images[src]
                        }
                    }
                }
            }
        }
        try PNGCodec.write(RawImage(height: height, width: width, channels: shape.channels, pixels: pixels), to: path)
    }
}
