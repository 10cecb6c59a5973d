import Foundation
import MoLAData
import MoLAModel
import MoLAReport
import MoLASupport
import MoLATensor

/// What a run folder records about its model, so `eval` can rebuild it: `run.json`.
public struct RunDescription: Codable, Equatable, Sendable {
    public var config: TrainConfig
    public var tasks: [String]
    public var classes: [Int]
    public var height: Int, width: Int, channels: Int
    /// Each task's label kind; absent when every task is single-label.
    public var labelKinds: [LabelKind]?
    public var input: FeatureShape { FeatureShape(height: height, width: width, channels: channels) }

    public init(config: TrainConfig, tasks: [String], classes: [Int], labelKinds: [LabelKind], height: Int, width: Int, channels: Int) {
        (self.config, self.tasks, self.classes, self.height, self.width, self.channels) = (config, tasks, classes, height, width, channels)
        self.labelKinds = labelKinds.contains(.multi) ? labelKinds : nil
    }

    public func makeModel(engine: Engine = .default) -> any TaskModel {
        ModelFactory.make(config, input: input, classes: classes, labelKinds: labelKinds, adapterCount: max(1, tasks.count), engine: engine)
    }

    func write(to dir: String) throws {
        try FileIO.writeAtomically(String(decoding: try JSONEncoder.sorted.encode(self), as: UTF8.self), to: dir + "/run.json")
    }

    static func read(_ dir: String) throws -> RunDescription {
        let path = dir + "/run.json"
        do { return try JSONDecoder().decode(RunDescription.self, from: try FileIO.read(path)) } catch let e as DataError { throw e } catch {
            throw DataError(file: path, "run.json cannot be read: \(error)", fix: "point at a folder written by `mola-train run`")
        }
    }
}

/// `mola-train run`: resolves the data, trains (one model, or one per task for
/// single-task), then evaluates the best checkpoint on test and writes the report.
public struct TrainingRun {
    public var configFile: String
    public var overrides: [String] = []
    public var resume = false
    /// Delete an existing run folder first.
    public var fresh = false
    public var progress = true
    /// For tests: stop as if signalled after this many steps (of the current model).
    public var stopAfterSteps: Int?
    public var log: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
    /// Set when this process is one rank of `mpirun -np N mola-train run`: rank 0 alone
    /// writes the run folder, logs and shows progress.
    public var parallel: DataParallel?
    /// When another process trains into the same run folder: refuse (default) or wait.
    public var contention: ProcessLock.Contention = .refuse
    var isLeader: Bool { parallel?.isLeader ?? true }

    public init(configFile: String) { self.configFile = configFile }

    public func run() throws -> (outcome: Trainer.Outcome, directory: String) {
        let config = try TrainConfig.load(configFile, overrides: overrides)
        let data = try TrainingData(config: config, configFile: configFile, progress: progress && isLeader)
        let dir = URL(fileURLWithPath: config.output ?? "runs/\(config.name)").standardized.path
        if let parallel, !isLeader {
            // The others wait until rank 0 has checked and prepared the folder (an error
            // there ends the job: mpirun stops every rank when one exits non-zero).
            parallel.mpi.barrier()
            return try trainAll(config: config, data: data, dir: dir)
        }
        let lock = try ProcessLock(dir, what: "the run folder", contention: contention)
        defer { withExtendedLifetime(lock) {} }
        if fresh { try? FileManager.default.removeItem(atPath: dir) }
        if !resume, FileIO.exists(dir + "/run.json") {
            throw DataError(file: dir, "the run folder already holds a run",
                            fix: "continue it with --resume, replace it with --fresh, or set another `output:`")
        }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let description = RunDescription(config: config, tasks: data.taskNames, classes: data.classes, labelKinds: data.labelKinds,
                                         height: data.shape.height, width: data.shape.width, channels: data.shape.channels)
        if resume, let old = try? RunDescription.read(dir), old.config.hash != config.hash {
            throw DataError(file: dir + "/run.json", "the run folder was made with a different config",
                            fix: "resume with the same config, or use --fresh to start over")
        }
        try description.write(to: dir)
        parallel?.mpi.barrier()
        return try trainAll(config: config, data: data, dir: dir)
    }

    /// Trains the run's model (or, single-task, one per task) in the prepared folder.
    func trainAll(config: TrainConfig, data: TrainingData, dir: String) throws -> (outcome: Trainer.Outcome, directory: String) {
        let description = RunDescription(config: config, tasks: data.taskNames, classes: data.classes, labelKinds: data.labelKinds,
                                         height: data.shape.height, width: data.shape.width, channels: data.shape.channels)
        let train = try data.load(.train), val = try data.load(.val), test = try data.load(.test)
        let ranks = parallel.map { ", \($0.size) MPI ranks (each 1/\($0.size) of every batch)" } ?? ""
        log("\(config.name): \(config.method) on \(data.taskNames.joined(separator: ", ")) — \(train.count) train, \(val.count) val, \(test.count) test images of \(data.shape); \(config.engine(parallel: parallel).threads) threads\(ranks)")

        if config.method.modelPerTask {
            var subs: [String] = [], reports: [RunReport] = []
            for (t, name) in data.taskNames.enumerated() {
                let sub = "tasks/\(name)"
                var c = config
                c.tasks = [name]
                c.name = "\(config.name)-\(name)"
                let only = { (d: SplitData) -> SplitData in var f = d.filter(tasks: [Int32(t)]); f.tasks = f.tasks.map { _ in 0 }; return f }
                // Each model gets the joint model's step budget: with equal epochs instead,
                // a task 1/40 of the data would train for 1/40 of the steps and look worse
                // than it is.
                let jointSteps = config.epochs * max(1, train.count / config.batchSize)
                let budget = config.maxSteps > 0 ? min(config.maxSteps, jointSteps) : jointSteps
                let taskTrain = only(train)
                let perEpoch = max(1, taskTrain.count / config.batchSize)
                c.epochs = (budget + perEpoch - 1) / perEpoch
                c.maxSteps = budget
                let subDescription = RunDescription(config: c, tasks: [name], classes: [data.classes[t]], labelKinds: [data.labelKinds[t]], height: data.shape.height,
                                                    width: data.shape.width, channels: data.shape.channels)
                if isLeader {
                    try FileManager.default.createDirectory(atPath: dir + "/" + sub, withIntermediateDirectories: true)
                    try subDescription.write(to: dir + "/" + sub)
                }
                log("single-task model \(t + 1)/\(data.taskNames.count): \(name)")
                let (outcome, report) = try trainOne(subDescription, dir: dir + "/" + sub, train: taskTrain, val: only(val), test: only(test),
                                                     dataset: data.directory)
                if outcome == .interrupted { return (.interrupted, dir) }
                subs.append(sub)
                reports.append(report!)
            }
            let report = combine(reports, description: description, dataset: data.directory, subRuns: subs)
            if isLeader { try report.write(to: dir, metrics: []) }
            log("test average \(String(format: "%.2f", report.test.average))%; report: \(dir)/report.md")
            return (.finished, dir)
        }
        let (outcome, report) = try trainOne(description, dir: dir, train: train, val: val, test: test, dataset: data.directory)
        if let report { log("test average \(String(format: "%.2f", report.test.average))%; report: \(dir)/report.md") }
        return (outcome, dir)
    }

    func trainOne(_ d: RunDescription, dir: String, train: SplitData, val: SplitData, test: SplitData,
                  dataset: String) throws -> (Trainer.Outcome, RunReport?) {
        if resume, let done = try? RunReport.read(dir), done.configHash == d.config.hash { return (.finished, done) }
        let model = d.makeModel(engine: d.config.engine(parallel: parallel))
        if let weights = d.config.backbone.initWeights { try PretrainedWeights.load(weights, into: model.store) }
        let trainer = Trainer(config: d.config, directory: dir, model: model, train: train, val: val, taskNames: d.tasks, parallel: parallel,
                              progress: progress && isLeader, log: log)
        trainer.stopAfterSteps = stopAfterSteps
        trainer.classes = d.classes
        if resume, try trainer.resume() { log("resumed \(dir) at step \(trainer.state.step)") }
        else if isLeader {  // a fresh start: no stale metrics or checkpoints from an earlier attempt
            try? FileManager.default.removeItem(atPath: dir + "/metrics.jsonl")
            try? FileManager.default.removeItem(atPath: dir + "/checkpoints")
        }
        parallel?.mpi.barrier()  // no rank reads a checkpoint rank 0 is about to replace
        guard try trainer.run() == .finished else { return (.interrupted, nil) }
        var report = try Self.finalReport(model: model, description: d, directory: dir, state: trainer.state, val: val, test: test,
                                          dataset: dataset, parallel: parallel, validation: trainer.bestValidationEvaluation)
        let metrics = MetricsLog(directory: dir).read()
        report.conflict = RunReport.lastConflict(metrics)
        if isLeader { try report.write(to: dir, metrics: metrics) }
        return (.finished, report)
    }

    /// Evaluates the best-on-validation checkpoint once on test and gathers the report.
    /// `validation`: the checkpoint's validation evaluation, if training kept it (else
    /// evaluated here: a resumed run's best may come from an earlier process).
    static func finalReport(model: any TaskModel, description d: RunDescription, directory: String, state: TrainState,
                            val: SplitData, test: SplitData, dataset: String, parallel: DataParallel? = nil,
                            validation: Evaluation? = nil) throws -> RunReport {
        _ = try Checkpoint.load(from: directory + "/checkpoints/best", into: model.store, configHash: d.config.hash)
        let v = validation ?? Evaluation.run(model, on: val, tasks: d.tasks.count, parallel: parallel)
        let t = Evaluation.run(model, on: test, tasks: d.tasks.count, parallel: parallel)
        var layers = model.adaptedConvolutions
        if layers.isEmpty { layers = model.convolutions.filter { $0.conv.kernel == 3 } }
        var report = RunReport(name: d.config.name, method: d.config.method.name, seed: d.config.seed, configHash: d.config.hash, dataset: dataset,
                         tasks: d.tasks,
                         test: .init(perTask: Dictionary(uniqueKeysWithValues: zip(d.tasks, t.perTask)), average: t.average),
                         validation: .init(perTask: Dictionary(uniqueKeysWithValues: zip(d.tasks, v.perTask)), average: v.average),
                         parameters: ParameterCounts(model.store), steps: state.step, epochs: state.epoch, bestStep: state.bestStep,
                         trainSeconds: state.trainSeconds, trainImagesPerSecond: Double(state.step * d.config.batchSize) / max(state.stepSeconds, 1e-9),  // batches are full (dropLast)
                         threads: model.store.engine.threads, routerWeights: t.routerWeights,
                         spectra: layers.map { LayerSpectrum.analyse(name: $0.name, conv: $0.conv) }, subRuns: nil,
                         receipt: .init(dataset: dataset), variant: d.config.variant)
        report.routerWeightsOver = d.config.method.mixes?.rawValue
        report.settings = d.config.settings
        report.testMetrics = Dictionary(uniqueKeysWithValues: zip(d.tasks, t.metrics))
        if let index = try? DatasetIndex.read(directory: dataset) {
            report.classNames = Dictionary(uniqueKeysWithValues: d.tasks.compactMap { n in index.tasks.first { $0.name == n }.map { (n, $0.classes) } })
        }
        return report
    }

    /// The single-task report: each task's accuracy from its own model; parameters and
    /// time summed over the models.
    func combine(_ rs: [RunReport], description d: RunDescription, dataset: String, subRuns: [String]) -> RunReport {
        var test: [String: Double] = [:], val: [String: Double] = [:]
        for r in rs { test.merge(r.test.perTask) { a, _ in a }; val.merge(r.validation.perTask) { a, _ in a } }
        let avg = { (m: [String: Double]) in d.tasks.map { m[$0] ?? 0 }.reduce(0, +) / Double(d.tasks.count) }
        let seconds = rs.map(\.trainSeconds).reduce(0, +)
        let images = Double(rs.map(\.steps).reduce(0, +) * d.config.batchSize)
        let stepSeconds = rs.map { Double($0.steps * d.config.batchSize) / max($0.trainImagesPerSecond, 1e-9) }.reduce(0, +)
        var report = RunReport(name: d.config.name, method: d.config.method.name, seed: d.config.seed, configHash: d.config.hash, dataset: dataset,
                         tasks: d.tasks, test: .init(perTask: test, average: avg(test)), validation: .init(perTask: val, average: avg(val)),
                         parameters: rs.map(\.parameters).reduce(ParameterCounts(), +), steps: rs.map(\.steps).reduce(0, +),
                         epochs: d.config.epochs, bestStep: -1, trainSeconds: seconds,
                         trainImagesPerSecond: images / max(stepSeconds, 1e-9),
                         threads: d.config.engine(parallel: parallel).threads, routerWeights: nil, spectra: rs.flatMap { r in r.spectra.map { var s = $0; s.layer = "\(r.tasks[0]).\(s.layer)"; return s } },
                         subRuns: subRuns, receipt: .init(dataset: dataset), variant: d.config.variant)
        report.settings = d.config.settings
        report.testMetrics = rs.reduce(into: [:]) { all, r in all.merge(r.testMetrics ?? [:]) { a, _ in a } }
        report.classNames = rs.reduce(into: [:]) { all, r in all.merge(r.classNames ?? [:]) { a, _ in a } }
        return report
    }
}

extension JSONEncoder {
    static var sorted: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return e
    }
}
