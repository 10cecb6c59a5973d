import Foundation
import MoLAData
import MoLAModel
import MoLAReport
import MoLASupport
import MoLATensor

/// `mola-train predict`: what a run's model says of new images. The images are prepared as
/// ingest prepared the run's dataset (its manifest copy gives the size, channels, resize
/// filter and the DICOM and NIfTI settings), the best checkpoint (or `latest`) reads them in
/// eval mode, and each image, DICOM frame or NIfTI slice gets a row per task: the predicted
/// class and every class's probability (a multi-label task: the labels predicted present,
/// probability above ½, joined by `|`, and every label's probability).
public enum Prediction {
    public struct Row: Sendable {
        public var source: String
        /// "frame 3", "slice 12 (t 0)": where in its file the image is ("" for a plain image).
        public var position: String
        public var task: String
        public var predicted: String
        /// The true class (or labels) of a dataset folder's record; nil for an image file.
        public var truth: String?
        /// Class name → probability (softmax of the task's head; σ per label for a
        /// multi-label task).
        public var probabilities: [(String, Double)]
    }

    public struct Result: Sendable {
        public var rows: [Row]
        public var skipped: [String]

        /// The CSV: source, position, task, predicted (and truth, when a dataset folder was
        /// predicted), then one `p_<class>` column per class of the tasks predicted (empty for
        /// another task's classes).
        public var csv: String {
            var columns: [String] = []
            for r in rows { for (c, _) in r.probabilities where !columns.contains(c) { columns.append(c) } }
            let truth = rows.contains { $0.truth != nil }
            func field(_ s: String) -> String { s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s }
            var out = (["source", "position", "task", "predicted"] + (truth ? ["truth"] : []) + columns.map { "p_" + $0 }).map(field).joined(separator: ",") + "\n"
            for r in rows {
                let p = Dictionary(r.probabilities, uniquingKeysWith: { a, _ in a })
                out += (([r.source, r.position, r.task, r.predicted] + (truth ? [r.truth ?? ""] : [])).map(field)
                    + columns.map { c in p[c].map { String(format: "%.6f", $0) } ?? "" }).joined(separator: ",") + "\n"
            }
            return out
        }
    }

    /// Predicts `inputs` (files, folders, or dataset folders — whose `split` is predicted)
    /// with the run in `runDirectory`, for `task` (all the run's tasks when nil). `dataset`:
    /// the dataset folder whose manifest says how to prepare images (default: the run's own).
    public static func run(runDirectory run: String, inputs: [String], task: String? = nil, dataset: String? = nil,
                           split: Split = .test, checkpoint: String = "best", skipBad: Bool = false) throws -> Result {
        let d = try RunDescription.read(run)
        // The dataset: named, the report's, the config's, or where its manifest is ingested.
        let ingested = d.config.data.manifest.flatMap { try? Ingest.defaultOutput(for: Manifest(path: $0)) }
        let datasetDir = try dataset ?? (try? RunReport.read(run).dataset) ?? d.config.data.dataset ?? ingested
            ?? { throw DataError(file: run, "the run does not say which dataset it trained on", fix: "name it with --dataset DIR") }()
        let index = try DatasetIndex.read(directory: datasetDir)
        let manifestCopy = datasetDir + "/manifest.yaml"
        let manifest = try Manifest(path: manifestCopy)
        let tasks = try task.map { t -> [String] in
            guard d.tasks.contains(t) else { throw DataError(file: run + "/run.json", "the run has no task '\(t)'", fix: "tasks: \(d.tasks.joined(separator: ", "))") }
            return [t]
        } ?? d.tasks
        var rows: [Row] = [], skipped: [String] = []
        var models: [String: any TaskModel] = [:]  // by folder: a joint model serves every task
        // Dataset folders (index.json beside shards) are predicted from their shards, with
        // each record's true label; everything else is a file or folder of images.
        let datasets = inputs.filter { FileIO.exists($0 + "/" + DatasetIndex.fileName) }
        let images = inputs.filter { !datasets.contains($0) }
        for name in tasks {
            // Single-task runs hold one model per task in tasks/<name>/.
            let (dir, description, head) = d.config.method.modelPerTask
                ? (run + "/tasks/" + name, try RunDescription.read(run + "/tasks/" + name), 0)
                : (run, d, d.tasks.firstIndex(of: name)!)
            let model = try models[dir] ?? {
                let m = description.makeModel()
                guard let saved = Checkpoint.existing(dir + "/checkpoints/" + checkpoint) else {
                    throw DataError(file: dir + "/checkpoints/" + checkpoint, "no checkpoint here", fix: "train the run first (mola-train run … --resume)")
                }
                _ = try Checkpoint.load(from: saved, into: m.store, configHash: description.config.hash)
                return m
            }()
            models[dir] = model
            // One name per output of the head: the dataset's class names, else the index.
            let known = index.tasks.first { $0.name == name }?.classes ?? []
            let classes = (0..<description.classes[head]).map { $0 < known.count ? known[$0] : "\($0)" }
            let kind = model.heads.labelKinds[head]
            let describe = { (l: Int32) in
                kind == .multi ? classes.indices.filter { LabelKind.has(l, $0) }.map { classes[$0] }.joined(separator: "|") : classes[Int(l)]
            }
            if !images.isEmpty {
                let prepared = try PreparedImages(images, like: manifest, task: manifest.tasks.contains { $0.name == name } ? name : nil, skipBad: skipBad)
                skipped += prepared.skipped.filter { !skipped.contains($0) }
                guard prepared.shape == ImageShape(height: d.height, width: d.width, channels: d.channels) else {
                    throw DataError(file: manifestCopy, "images are prepared at \(prepared.shape), the model takes \(d.input)",
                                    fix: "name the dataset the run trained on with --dataset")
                }
                let data = SplitData(shape: prepared.shape, images: prepared.pixels, labels: Array(repeating: 0, count: prepared.count),
                                     tasks: Array(repeating: Int32(head), count: prepared.count))
                rows += predict(model, data, head: head, task: name, classes: classes, kind: kind) { r in
                    let source = prepared.files[r], location = prepared.locations[r]
                    return (source, String(location.dropFirst(source.count)).trimmingCharacters(in: .whitespaces), nil)
                }
            }
            for folder in datasets {
                let reader = try DatasetReader(directory: folder)
                guard let id = reader.index.tasks.firstIndex(where: { $0.name == name }) else { continue }
                guard reader.index.image == ImageShape(height: d.height, width: d.width, channels: d.channels),
                      reader.index.tasks[id].labelKind == kind, reader.index.tasks[id].classes.count == description.classes[head] else {
                    throw DataError(file: folder + "/" + DatasetIndex.fileName,
                                    "task \(name) here (\(reader.index.image), \(reader.index.tasks[id].classes.count) \(reader.index.tasks[id].labelKind.rawValue)-label classes) is not the model's (\(d.input), \(description.classes[head]))",
                                    fix: "ingest the dataset with the manifest the run trained on")
                }
                var data = try reader.load(split).filter(tasks: [Int32(id)])
                data.tasks = data.tasks.map { _ in Int32(head) }
                rows += predict(model, data, head: head, task: name, classes: classes, kind: kind) { r in
                    (folder, "\(split.rawValue) record \(r)", describe(data.labels[r]))
                }
            }
        }
        return Result(rows: rows, skipped: skipped)
    }

    /// One row per record of `data` (every record of task `head`): the predicted class
    /// (the first largest logit, as evaluation counts it) or labels (above ½), and the
    /// probabilities. `classes`: a name per output of the head. `where`: a record's source,
    /// position and true label (if known).
    static func predict(_ model: any TaskModel, _ data: SplitData, head: Int, task: String, classes: [String], kind: LabelKind,
                        where place: (Int) -> (String, String, String?)) -> [Row] {
        let width = model.heads.classes[head]
        var rng = RandomGenerator(seed: 0)
        var p = [Float](repeating: 0, count: data.count * width), rows: [Row] = []
        var lo = 0
        while lo < data.count {
            let hi = min(data.count, lo + 256)
            let b = data.batch(ArraySlice(lo..<hi), training: false, rng: &rng)
            let logits = model.forward(b.images, layout: b.layout)[0]
            probabilityRows(logits, kind: kind, records: b.records[...], into: &p, width: width)
            let predicted = CrossEntropy.argmax(rows: b.records.count, classes: width, logits: logits.pointer)
            for (i, r) in b.records.enumerated() {
                let row = (0..<width).map { Double(p[r * width + $0]) }
                let answer = kind == .multi ? row.indices.filter { p[r * width + $0] > 0.5 }.map { classes[$0] }.joined(separator: "|") : classes[Int(predicted[i])]
                let (source, position, truth) = place(r)
                rows.append(Row(source: source, position: position, task: task, predicted: answer, truth: truth,
                                probabilities: Array(zip(classes, row))))
            }
            lo = hi
        }
        return rows
    }
}
