import Foundation
import MoLAData
import MoLASupport
import MoLATensor

/// `mola-train eval`: a saved run's checkpoint on any prepared dataset holding its tasks.
public enum Evaluator {
    public struct Result: Codable, Sendable {
        public var run: String
        public var dataset: String
        public var split: String
        public var perTask: [String: Double]
        public var average: Double
        public var images: Int
    }

    public static func evaluate(run: String, dataset: String, split: Split, checkpoint: String) throws -> Result {
        let d = try RunDescription.read(run)
        let index = try DatasetIndex.read(directory: dataset)
        let shape = index.image
        guard shape.height == d.height, shape.width == d.width, shape.channels == d.channels else {
            throw DataError(file: dataset + "/index.json", "images are \(shape), the model was trained on \(d.input)",
                            fix: "ingest the dataset at the model's size (the manifest's image: key)")
        }
        let reader = try DatasetReader(directory: dataset)
        let all = try reader.load(split)
        var perTask: [String: Double] = [:]
        var images = 0
        // Single-task runs hold one model per task in tasks/<name>/.
        let models: [(dir: String, tasks: [String], description: RunDescription)] = d.config.method.modelPerTask
            ? try d.tasks.map { t in (run + "/tasks/" + t, [t], try RunDescription.read(run + "/tasks/" + t)) }
            : [(run, d.tasks, d)]
        for m in models {
            let ids = m.tasks.map { t in index.tasks.firstIndex { $0.name == t } }
            guard ids.contains(where: { $0 != nil }) else { continue }
            let model = m.description.makeModel()
            let dir = m.dir + "/checkpoints/" + checkpoint
            guard Checkpoint.existing(dir) != nil else {
                throw DataError(file: dir, "no checkpoint here", fix: "train the run first (mola-train run … --resume)")
            }
            _ = try Checkpoint.load(from: Checkpoint.existing(dir)!, into: model.store, configHash: m.description.config.hash)
            for (runTask, id) in ids.enumerated() {
                guard let id else { continue }
                guard index.tasks[id].classes.count == m.description.classes[runTask] else {
                    throw DataError(file: dataset + "/index.json", "task \(m.tasks[runTask]) has \(index.tasks[id].classes.count) classes here, the model \(m.description.classes[runTask])")
                }
                let kind = m.description.labelKinds?[runTask] ?? .single
                guard index.tasks[id].labelKind == kind else {
                    throw DataError(file: dataset + "/index.json", "task \(m.tasks[runTask]) is \(index.tasks[id].labelKind.rawValue)-label here, the model's head is \(kind.rawValue)-label",
                                    fix: "evaluate on a dataset whose manifest gives the task the same `labels:` kind")
                }
                var part = all.filter(tasks: [Int32(id)])
                part.tasks = part.tasks.map { _ in Int32(runTask) }
                let e = Evaluation.run(model, on: part, tasks: m.tasks.count)
                perTask[m.tasks[runTask]] = e.perTask[runTask]
                images += part.count
            }
        }
        guard !perTask.isEmpty else {
            throw DataError(file: dataset + "/index.json", "the dataset has none of the run's tasks (\(d.tasks.joined(separator: ", ")))")
        }
        return Result(run: run, dataset: dataset, split: split.rawValue, perTask: perTask,
                      average: perTask.values.reduce(0, +) / Double(perTask.count), images: images)
    }
}
