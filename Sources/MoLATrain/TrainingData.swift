import Foundation
import MoLAData
import MoLAModel
import MoLASupport

/// The dataset of a run: resolved from the config (ingesting the manifest when its dataset
/// is missing or stale), restricted to the config's tasks, which are renumbered 0..<T in the
/// config's order.
public struct TrainingData {
    public let directory: String
    public let index: DatasetIndex
    /// Names and class counts of the selected tasks, in run order.
    public let taskNames: [String]
    public let classes: [Int]
    /// Each selected task's label kind (one class, or any of its labels).
    public let labelKinds: [LabelKind]
    public let shape: FeatureShape

    /// Resolves and checks the data, without loading records.
    public init(config: TrainConfig, configFile: String, progress: Bool) throws {
        if let manifestPath = config.data.manifest {
            guard FileIO.exists(manifestPath) else {
                throw DataError(file: configFile, location: "data.manifest", "manifest \(manifestPath) not found",
                                fix: "name a file in data-manifests/, e.g. data-manifests/digits-fashion.yaml")
            }
            let manifest = try Manifest(path: manifestPath)
            // Another run (an MPI rank, a parallel pipeline stage) may be ingesting it: wait.
            var options = Ingest.Options(output: Ingest.defaultOutput(for: manifest), progress: progress)
            options.contention = .fromFlag(wait: true, target: options.output)
            let result = try Ingest(manifest: manifest, options: options).run()
            if !result.upToDate, progress { FileHandle.standardError.write(Data("ingested \(result.images) images into \(result.directory)\n".utf8)) }
            directory = result.directory
        } else {
            directory = config.data.dataset!
            guard FileIO.exists(directory + "/" + DatasetIndex.fileName) else {
                throw DataError(file: configFile, location: "data.dataset", "no prepared dataset at \(directory) (no index.json)",
                                fix: "run `mola-prep ingest <manifest> --out \(directory)` first, or name the manifest with data.manifest")
            }
        }
        let index = try DatasetIndex.read(directory: directory)
        self.index = index
        let all = index.tasks.map(\.name)
        let wanted = config.tasks ?? all
        for t in wanted where !all.contains(t) {
            throw DataError(file: configFile, location: "tasks", "the dataset at \(directory) has no task '\(t)'",
                            fix: "its tasks are: \(all.joined(separator: ", "))")
        }
        guard !wanted.isEmpty else { throw DataError(file: configFile, location: "tasks", "no tasks selected") }
        taskNames = wanted
        classes = wanted.map { n in index.tasks.first { $0.name == n }!.classes.count }
        labelKinds = wanted.map { n in index.tasks.first { $0.name == n }!.labelKind }
        shape = FeatureShape(height: index.image.height, width: index.image.width, channels: index.image.channels)
        for s in [Split.train, .val, .test] where (index.split(s)?.count ?? 0) == 0 {
            throw DataError(file: directory + "/index.json", "the dataset has no \(s.rawValue) split",
                            fix: s == .val ? "set `validation: 0.1` in the manifest to carve one from train, then re-ingest" : "add sources for it in the manifest")
        }
        let minSide = 1 << (config.backbone.widths.count - 1)
        guard shape.height >= minSide, shape.width >= minSide else {
            throw DataError(file: configFile, location: "backbone", "images of \(shape) are too small for \(config.backbone.widths.count) stride-2 stages",
                            fix: "use fewer backbone stages or a larger image size in the manifest")
        }
    }

    /// The records of `split` for the selected tasks, task ids renumbered to run order.
    public func load(_ split: Split) throws -> SplitData {
        let reader = try DatasetReader(directory: directory)
        let ids = taskNames.map { n in Int32(index.tasks.firstIndex { $0.name == n }!) }
        var data = try reader.load(split)
        if ids != Array(0..<Int32(index.tasks.count)) { data = data.filter(tasks: Set(ids)) }
        let remap = Dictionary(uniqueKeysWithValues: ids.enumerated().map { ($1, Int32($0)) })
        data.tasks = data.tasks.map { remap[$0]! }
        return data
    }
}
