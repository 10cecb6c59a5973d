import Foundation
import MoLASupport

/// Turns a manifest's sources into a dataset folder of checksummed shards.
///
/// The folder is built under a hidden temporary name next to its destination and moved into
/// place only when complete, so an interrupted or failed ingest leaves the previous dataset
/// (or none), never a half-written one. When the manifest, options and every input file's
/// size and modification time are unchanged, the existing dataset is kept as it is.
public struct Ingest {
    public struct Options {
        public var output: String
        public var skipBad = false
        public var force = false
        public var progress = true
        /// Only part `index` of `count` (0-based): each source's records are cut into `count`
        /// contiguous ranges, after the splits are decided over all records, and this part's
        /// shards go to `<output>.parts/part-<index>-of-<count>` for `Ingest.merge`.
        public var part: (index: Int, count: Int)?
        /// Worker threads for decoding and compressing.
        public var threads: Int
        /// When another process is writing the same folder: refuse (default) or wait.
        public var contention: ProcessLock.Contention = .refuse

        public init(output: String, skipBad: Bool = false, force: Bool = false, progress: Bool = true,
                    part: (index: Int, count: Int)? = nil, threads: Int = Parallel.cores) {
            self.threads = max(1, threads)
            self.output = output
            self.skipBad = skipBad
            self.force = force
            self.progress = progress
            self.part = part
        }
    }

    /// The folder of part `index` of `count` of the dataset at `output`.
    public static func partDirectory(_ output: String, index: Int, count: Int) -> String {
        URL(fileURLWithPath: output).standardized.path + ".parts/part-\(index)-of-\(count)"
    }

    public struct Result {
        public var directory: String
        public var index: DatasetIndex
        public var upToDate: Bool
        public var seconds: Double
        public var images: Int { index.splits.values.reduce(0) { $0 + $1.count } }
    }

    let manifest: Manifest
    let options: Options
    /// Image files under each tree root, listed once for the fingerprint and reused to build.
    private let listings = Listings()

    final class Listings {
        var byRoot: [String: [(file: String, folder: String)]] = [:]
        func get(_ source: Manifest.SourceSpec) throws -> [(file: String, folder: String)] {
            let root = source.paths[0]
            let key = root + "\u{0}" + (source.labels ?? "")
            if let hit = byRoot[key] { return hit }
            let list: [(file: String, folder: String)]
            switch source.format {
            case _ where source.labels != nil: list = try TreeLabels.listing(root: root, table: source.labels!)
            case .dicomTree: list = try DICOMTreeSource.listing(root)
            case .nifti: list = try NIfTITreeSource.listing(root)
            default: list = try ImageTreeSource.listing(root)
            }
            byRoot[key] = list
            return list
        }
    }

    public init(manifest: Manifest, options: Options) {
        self.manifest = manifest
        self.options = options
    }

    /// The default output folder: `datasets/<name>` under the current directory.
    public static func defaultOutput(for manifest: Manifest) -> String {
        FileManager.default.currentDirectoryPath + "/datasets/" + manifest.name
    }

    public func run() throws -> Result {
        let start = Date()
        let out = options.part.map { Self.partDirectory(options.output, index: $0.index, count: $0.count) }
            ?? URL(fileURLWithPath: options.output).standardized.path
        let datasetFingerprint = try inputFingerprint()
        let fingerprint = options.part.map { "\(datasetFingerprint)/part-\($0.index)-of-\($0.count)" } ?? datasetFingerprint
        func upToDate() -> Result? {
            guard !options.force, let index = try? DatasetIndex.read(directory: out), index.inputFingerprint == fingerprint,
                  index.shards.allSatisfy({ FileIO.stamp(out + "/" + $0.file)?.size == $0.bytes }) else { return nil }
            return Result(directory: out, index: index, upToDate: true, seconds: Date().timeIntervalSince(start))
        }
        // Readers need no lock; a writer checks again once it holds it (the process it
        // waited for may have just written the same dataset).
        if let done = upToDate() { return done }
        let lock = try ProcessLock(out, what: "the dataset folder", contention: options.contention)
        defer { withExtendedLifetime(lock) {} }
        if let done = upToDate() { return done }
        let parent = URL(fileURLWithPath: out).deletingLastPathComponent().path
        let base = URL(fileURLWithPath: out).lastPathComponent
        do { try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true) } catch {
            throw DataError(file: parent, "cannot create the output folder: \(error.localizedDescription)")
        }
        Self.removeAbandoned(in: parent, base: base)
        let work = parent + "/.\(base).tmp-\(getpid())"
        try? FileManager.default.removeItem(atPath: work)
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: false)
        do {
            var index = try build(into: work, fingerprint: fingerprint)
            if let part = options.part {
                index.part = .init(index: part.index, count: part.count, datasetFingerprint: datasetFingerprint)
            }
            try FileIO.writeAtomically(try index.encoded(), to: work + "/" + DatasetIndex.fileName)
            try FileIO.writeAtomically([UInt8](try FileIO.read(manifest.file)), to: work + "/manifest.yaml")
            try Self.replace(out, with: work)
            return Result(directory: out, index: index, upToDate: false, seconds: Date().timeIntervalSince(start))
        } catch var e as DiskFullError {
            if e.what != "the dataset" {  // index.json or the manifest's copy, after the shards
                e.needed = FileIO.folderBytes(work) + (e.needed ?? 0)
                e.what = "the dataset"
            }
            try? FileManager.default.removeItem(atPath: work)
            // What is free once the partial folder is gone, which is what the user has.
            e.path = out
            e.available = DiskSpace.available(at: parent) ?? e.available
            let need = e.needed.map { "about \(DiskSpace.human($0))" } ?? "more space"
            e.fix = "free \(need) on the disk holding \(parent)" + (FileIO.exists(out) ? " (the dataset already there is intact)" : "")
                + ", or ingest elsewhere with --out; then run the same command again"
            throw e
        } catch {
            try? FileManager.default.removeItem(atPath: work)
            throw error
        }
    }

    /// Moves the finished folder into place. Between the two renames neither exists; a
    /// crash there leaves no dataset (and a hidden `.old` folder the next run removes).
    static func replace(_ out: String, with work: String) throws {
        let fm = FileManager.default
        if fm.fileExists(atPath: out) {
            let old = URL(fileURLWithPath: out).deletingLastPathComponent().path + "/.\(URL(fileURLWithPath: out).lastPathComponent).old-\(getpid())"
            try FileIO.rename(out, old)
            try FileIO.rename(work, out)
            try? fm.removeItem(atPath: old)
        } else {
            try FileIO.rename(work, out)
        }
    }

    /// Removes temporary folders left by ingests that were killed (their process is gone).
    static func removeAbandoned(in parent: String, base: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: parent) else { return }
        for name in names where name.hasPrefix(".\(base).tmp-") || name.hasPrefix(".\(base).old-") {
            guard let pid = Int32(name.split(separator: "-").last ?? ""), pid != getpid() else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { try? FileManager.default.removeItem(atPath: parent + "/" + name) }
        }
    }

    /// Every input file of the manifest (image trees listed), for the no-op check.
    func inputFiles() throws -> [String] {
        var files: [String] = []
        for task in manifest.tasks {
            for source in task.sources {
                if source.format.isTree {
                    files += try listings.get(source).map(\.file) + (source.labels.map { [$0] } ?? [])
                } else {
                    for p in source.paths where !FileIO.exists(p) {
                        throw source.at.error("file not found: \(p)", fix: Self.installHint(for: p))
                    }
                    files += source.paths
                }
            }
        }
        return files
    }

    static func installHint(for path: String) -> String {
        if path.contains("fashion-mnist") { return "apt-get install dataset-fashion-mnist (or run scripts/setup.sh)" }
        return "check the path and the variables in it"
    }

    func inputFingerprint() throws -> String {
        var h = Hash.Stream()
        h.update(Array("\(DatasetIndex.schema)\n\(MoLAVersion.string)\n\(manifest.sha256)\nskip-bad:\(options.skipBad)\n".utf8))
        for f in try inputFiles() {
            let s = FileIO.stamp(f)
            h.update(Array("\(f)\t\(s?.size ?? -1)\t\(s?.mtime ?? -1)\n".utf8))
        }
        return h.finalize()
    }

    // MARK: - Building

    /// The records of `source` this run decodes: all, or its part's contiguous range.
    func mine(_ source: ImageSource) -> Range<Int> {
        guard let part = options.part else { return 0..<source.records.count }
        return Parallel.range(of: part.index, parts: part.count, count: source.records.count)
    }

    func build(into dir: String, fingerprint: String) throws -> DatasetIndex {
        let shape = manifest.shape
        // 1. Open every source and index its records.
        var taskClasses: [[String]] = []
        var opened: [[ImageSource]] = []
        for task in manifest.tasks {
            var classes = task.classes ?? []
            if task.classes == nil {
                // Class folders, or the labels a table gives.
                classes = Array(Set(try task.sources.flatMap { s in
                    s.labels == nil ? try TreeListing.classFolders(s.paths[0]) : try listings.get(s).map(\.folder)
                })).sorted()
            }
            taskClasses.append(classes)
            for source in task.sources where source.format.isTree {
                guard let table = source.labels else { continue }
                let columns = try TreeLabels.labelColumns(table: table)
                if task.labels == .multi, columns.map(Set.init) != Set(classes) {
                    throw DataError(file: table, location: "line 1", "the header's label columns (\(columns?.joined(separator: ", ") ?? "a file,label table")) are not the labels of task '\(task.name)'",
                                    fix: "write the header 'file,\(classes.joined(separator: ","))' with one 0/1 column per label")
                }
                if task.labels == .single, let columns {
                    throw DataError(file: table, location: "line 1", "the table has one column per label (\(columns.joined(separator: ", "))) but task '\(task.name)' is single-label",
                                    fix: "set `labels: multi` on the task, or write a 'file,label' table")
                }
            }
            opened.append(try task.sources.map {
                try $0.open(classes: classes, labels: task.labels, listing: $0.format.isTree ? listings.get($0) : [])
            })
        }
        // 2. Check labels, then decide every record's split (nil: skipped).
        var skipped: [String] = []
        var splits: [[[Split?]]] = []
        for (t, task) in manifest.tasks.enumerated() {
            var perSource: [[Split?]] = []
            for (s, source) in opened[t].enumerated() {
                var assigned = [Split?](repeating: nil, count: source.records.count)
                var good: [(id: Int, label: Int)] = []
                let mine = mine(source)
                for (i, r) in source.records.enumerated() {
                    var problem = r.problem
                    if problem == nil, task.labels == .single, !(0..<taskClasses[t].count).contains(r.label) {
                        problem = "label \(r.label) is outside the class list of task '\(task.name)' (0…\(taskClasses[t].count - 1))"
                    }
                    if let problem {
                        guard mine.contains(i) else { continue }  // another part reports it
                        let e = DataError(file: source.path, location: r.location, problem,
                                          fix: r.fix.map { "\($0), or ingest with --skip-bad" } ?? "fix the record or the task's classes, or ingest with --skip-bad")
                        guard options.skipBad else { throw e }
                        skipped.append(e.description)
                        continue
                    }
                    good.append((i, r.label))
                    assigned[i] = r.split
                }
                if case .carve(let test, let val) = task.sources[s].split {
                    SplitCarver.carve(good, test: test, val: val, seed: manifest.seed,
                                      name: "carve/\(task.name)/source:\(s)") { assigned[$0] = $1 }
                }
                perSource.append(assigned)
            }
            let hasVal = perSource.contains { $0.contains(.val) }
            if !hasVal, manifest.validation > 0 {
                var train: [(id: Int, label: Int)] = []
                var where_: [(Int, Int)] = []
                for (s, source) in opened[t].enumerated() {
                    for (i, sp) in perSource[s].enumerated() where sp == .train {
                        train.append((where_.count, source.records[i].label))
                        where_.append((s, i))
                    }
                }
                SplitCarver.carve(train, test: 0, val: manifest.validation, seed: manifest.seed,
                                  name: "validation/\(task.name)") { id, sp in
                    let (s, i) = where_[id]
                    perSource[s][i] = sp
                }
            }
            splits.append(perSource)
        }
        // 3. Decode, resize and route every record to its split's shards.
        let taskInfo = zip(manifest.tasks, taskClasses).map { DatasetIndex.TaskInfo(name: $0.name, classes: $1, labels: $0.labels) }
        let sinks = Dictionary(uniqueKeysWithValues: Split.allCases.map {
            ($0, ShardSink(split: $0, shape: shape, directory: dir, shardBytes: manifest.shardBytes,
                           compression: manifest.compression, rows: LabelRows(taskInfo)))
        })
        var counts = Dictionary(uniqueKeysWithValues: Split.allCases.map {
            ($0, taskClasses.map { [Int](repeating: 0, count: $0.count) })
        })
        var taskCounts = Dictionary(uniqueKeysWithValues: Split.allCases.map { ($0, [Int](repeating: 0, count: manifest.tasks.count)) })
        let total = opened.joined().reduce(0) { $0 + mine($1).count }
        let progress = Progress(label: "ingest \(manifest.name)", total: total, enabled: options.progress)
        let batch = 1024
        var scratch = [UInt8](repeating: 0, count: batch * shape.pixelCount)
        var done = 0
        do {
            for (t, sources) in opened.enumerated() {
                for (s, source) in sources.enumerated() {
                    let part = mine(source)
                    var lo = part.lowerBound
                    while lo < part.upperBound {
                        let range = lo..<min(part.upperBound, lo + batch)
                        let decoded = try source.decode(range, channels: shape.channels, threads: options.threads)
                        try scratch.withUnsafeMutableBufferPointer { out in
                            let outBase = out.baseAddress!
                            Parallel.forRanges(range.count, threads: options.threads) { part in
                                var resamplers: [Int: Resampler] = [:]
                                for k in part {
                                    guard case .success(let img) = decoded[k] else { continue }
                                    let key = img.height << 20 | img.width
                                    if resamplers[key] == nil {
                                        resamplers[key] = Resampler(inHeight: img.height, inWidth: img.width, to: shape, filter: manifest.resize)
                                    }
                                    resamplers[key]!.apply(img, into: outBase + k * shape.pixelCount)
                                }
                            }
                            for (k, i) in range.enumerated() {
                                guard let split = splits[t][s][i] else { continue }
                                if case .failure(let e) = decoded[k] {
                                    guard options.skipBad else { throw e }
                                    skipped.append(e.description)
                                    continue
                                }
                                let label = source.records[i].label
                                try sinks[split]!.append(UnsafeBufferPointer(rebasing: out[(k * shape.pixelCount)..<((k + 1) * shape.pixelCount)]),
                                                         label: label, task: t)
                                taskCounts[split]![t] += 1
                                if manifest.tasks[t].labels == .multi {
                                    for k in counts[split]![t].indices where LabelKind.has(Int32(label), k) { counts[split]![t][k] += 1 }
                                } else {
                                    counts[split]![t][label] += 1
                                }
                            }
                        }
                        progress.advance(range.count)
                        done += range.count
                        lo = range.upperBound
                    }
                }
            }
            for sink in sinks.values { try sink.flush() }
        } catch var e as DiskFullError {
            // The dataset so far, scaled to all its images: what the whole one needs.
            let written = FileIO.folderBytes(dir) + (e.needed ?? 0)  // finished shards + the one that failed
            e.what = "the dataset"
            e.needed = max(written, Int(Double(written) * Double(total) / Double(max(done, 1))))
            throw e
        }
        progress.finish()
        var splitInfo: [String: DatasetIndex.SplitInfo] = [:]
        for split in Split.allCases {
            let perClass = counts[split]!
            let perTask = taskCounts[split]!
            splitInfo[split.rawValue] = .init(count: perTask.reduce(0, +), perTask: perTask, perClass: perClass)
        }
        return DatasetIndex(
            schema: DatasetIndex.schema, name: manifest.name, kind: manifest.kind, toolVersion: MoLAVersion.string,
            manifestSha256: manifest.sha256, inputFingerprint: fingerprint, image: shape,
            compression: manifest.compression, seed: manifest.seed,
            tasks: taskInfo,
            splits: splitInfo,
            shards: Split.allCases.flatMap { sinks[$0]!.written },
            skipped: .init(count: skipped.count, records: Array(skipped.prefix(1000))))
    }
}
