import Foundation
import MoLASupport

extension Ingest {
    /// Joins the parts of a partitioned ingest (`<directory>.parts/part-i-of-n`) into the
    /// dataset folder `directory`: checks that all n parts are there, once, from the same
    /// manifest and inputs, then links their shards in part order (renamed `<split>-NNNNN`),
    /// sums the counts and writes index.json. The folder is replaced atomically, as by
    /// ingest; the parts stay (hard links cost no space). The result has the records of a
    /// one-process ingest of the same manifest (in another order within each split).
    public static func merge(directory: String, contention: ProcessLock.Contention = .refuse) throws -> Result {
        let start = Date()
        let out = URL(fileURLWithPath: directory).standardized.path
        let lock = try ProcessLock(out, what: "the dataset folder", contention: contention)
        defer { withExtendedLifetime(lock) {} }
        let partsDir = out + ".parts"
        guard FileIO.isDirectory(partsDir) else {
            throw DataError(file: partsDir, "no parts to merge", fix: "run `mola-prep ingest MANIFEST --part i/n` for every i first")
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: partsDir).filter { $0.hasPrefix("part-") }.sorted()
        var parts: [(dir: String, index: DatasetIndex)] = []
        for name in names {
            let index = try DatasetIndex.read(directory: partsDir + "/" + name)
            guard index.part != nil else {
                throw DataError(file: partsDir + "/" + name, "not a part of a partitioned ingest (index.json has no part)",
                                fix: "remove it from \(partsDir)")
            }
            parts.append((partsDir + "/" + name, index))
        }
        guard let first = parts.first?.index, let n = first.part?.count else {
            throw DataError(file: partsDir, "no parts to merge", fix: "run `mola-prep ingest MANIFEST --part i/n` for every i first")
        }
        for p in parts {
            let info = p.index.part!
            guard info.count == n else {
                throw DataError(file: p.dir, "part of a partition into \(info.count), but \(parts[0].dir) is of one into \(n)",
                                fix: "remove the parts of the other partition from \(partsDir)")
            }
            guard info.datasetFingerprint == first.part!.datasetFingerprint, p.index.manifestSha256 == first.manifestSha256 else {
                throw DataError(file: p.dir, "made from another manifest or other input files than \(parts[0].dir)",
                                fix: "re-run the ingest of every part from the same manifest and data")
            }
        }
        let present = parts.map { $0.index.part!.index }
        let missing = (0..<n).filter { !present.contains($0) }
        guard missing.isEmpty, present.count == n else {
            throw DataError(file: partsDir, "parts missing: \(missing.map { "\($0)/\(n)" }.joined(separator: ", "))",
                            fix: "run `mola-prep ingest MANIFEST --part i/\(n)` for each (a Slurm array task may have failed)")
        }
        parts.sort { $0.index.part!.index < $1.index.part!.index }

        var merged = first
        merged.part = nil
        merged.inputFingerprint = first.part!.datasetFingerprint
        merged.shards = []
        merged.skipped = .init(count: 0, records: [])
        for (key, s) in merged.splits {
            merged.splits[key] = .init(count: 0, perTask: s.perTask.map { _ in 0 }, perClass: s.perClass.map { $0.map { _ in 0 } })
        }
        let parent = URL(fileURLWithPath: out).deletingLastPathComponent().path
        let work = parent + "/.\(URL(fileURLWithPath: out).lastPathComponent).tmp-\(getpid())"
        try? FileManager.default.removeItem(atPath: work)
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        do {
            var numbers: [Split: Int] = [:]
            for p in parts {
                for var shard in p.index.shards {
                    let k = numbers[shard.split, default: 0]
                    numbers[shard.split] = k + 1
                    let name = String(format: "%@-%05d.npz", shard.split.rawValue, k)
                    let from = p.dir + "/" + shard.file, to = work + "/" + name
                    if link(from, to) != 0 { try FileManager.default.copyItem(atPath: from, toPath: to) }
                    shard.file = name
                    merged.shards.append(shard)
                }
                for (key, s) in p.index.splits {
                    var m = merged.splits[key]!
                    m.count += s.count
                    m.perTask = zip(m.perTask, s.perTask).map(+)
                    m.perClass = zip(m.perClass, s.perClass).map { zip($0, $1).map(+) }
                    merged.splits[key] = m
                }
                merged.skipped.count += p.index.skipped.count
                merged.skipped.records += p.index.skipped.records.prefix(max(0, 1000 - merged.skipped.records.count))
            }
            try FileIO.writeAtomically(try merged.encoded(), to: work + "/" + DatasetIndex.fileName)
            try FileManager.default.copyItem(atPath: parts[0].dir + "/manifest.yaml", toPath: work + "/manifest.yaml")
            try Self.replace(out, with: work)
        } catch {
            try? FileManager.default.removeItem(atPath: work)
            throw error
        }
        return Result(directory: out, index: merged, upToDate: false, seconds: Date().timeIntervalSince(start))
    }
}
