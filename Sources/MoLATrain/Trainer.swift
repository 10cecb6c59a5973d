import Foundation
import MoLAData
import MoLAModel
import MoLAReport
import MoLASupport
import MoLATensor
import Synchronization

/// Set by SIGINT/SIGTERM; the training loop checkpoints and stops at the next step.
let stopRequested = Atomic<Bool>(false)

public enum StopSignals {
    /// Routes SIGINT and SIGTERM to a clean stop (checkpoint, then exit) instead of death.
    public static func install() {
        // A parent may have spawned us with these blocked (test runners do): unblock them.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        for sig in [SIGINT, SIGTERM] { signal(sig) { _ in stopRequested.store(true, ordering: .relaxed) } }
    }
    public static func reset() { stopRequested.store(false, ordering: .relaxed) }
    /// Whether SIGINT or SIGTERM has arrived since `install`.
    public static var requested: Bool { stopRequested.load(ordering: .relaxed) }
}

public struct TrainError: MoLAError {
    public var description: String
}

/// Trains one model on one set of tasks, with validation, checkpoints and resume: the loop
/// over batches, evaluation and checkpointing. What a step computes is its `TrainingStep`'s.
/// Output folder layout: `metrics.jsonl`, `tb/` (TensorBoard), `checkpoints/{latest,best}/`.
public final class Trainer {
    public enum Outcome: Equatable { case finished, interrupted }

    let config: TrainConfig
    let directory: String
    let model: any TaskModel
    let train: SplitData, val: SplitData
    let taskNames: [String]
    var optimizer: any Optimizer
    var step: any TrainingStep
    public private(set) var state = TrainState()
    let log: (String) -> Void
    let showProgress: Bool
    let metrics: MetricsLog
    /// For tests: behave as if a stop signal arrived after this many steps.
    public var stopAfterSteps: Int?
    /// Set when this process is one rank of a data-parallel run (rank 0 writes the files).
    public let parallel: DataParallel?
    var isLeader: Bool { parallel?.isLeader ?? true }
    /// Classes per task, for the near-chance warning (empty: no warning).
    public var classes: [Int] = []
    /// The validation evaluation of the best checkpoint, when this process made it (the
    /// final report then needs no second pass over validation).
    public private(set) var bestValidationEvaluation: Evaluation?
    /// Consecutive evaluations each task has spent within 2 points of chance.
    var nearChance: [Int] = []
    /// The conflict diagnostics' fixed batch, made at the first evaluation.
    var probe: PreparedBatch?

    public var stepsPerEpoch: Int { Self.stepsPerEpoch(records: train.count, batchSize: config.batchSize) }

    /// Full batches per pass over `records` (at least 1).
    static func stepsPerEpoch(records: Int, batchSize: Int) -> Int { max(1, records / batchSize) }
    public var totalSteps: Int {
        let full = config.epochs * stepsPerEpoch
        return config.maxSteps > 0 ? min(full, config.maxSteps) : full
    }
    var latestDir: String { directory + "/checkpoints/latest" }
    var bestDir: String { directory + "/checkpoints/best" }

    public init(config: TrainConfig, directory: String, model: any TaskModel, train: SplitData, val: SplitData, taskNames: [String],
                parallel: DataParallel? = nil, progress: Bool, log: @escaping (String) -> Void) {
        self.config = config
        self.directory = directory
        self.model = model
        self.train = train
        self.val = val
        self.taskNames = taskNames
        self.parallel = parallel
        self.showProgress = progress
        self.log = log
        metrics = MetricsLog(directory: directory)
        switch config.optimizer.kind {
        case .sgd: optimizer = SGD(momentum: config.optimizer.momentum, weightDecay: config.optimizer.weightDecay)
        case .adamw: optimizer = AdamW(weightDecay: config.optimizer.weightDecay)
        }
        step = config.makeStep(model: model, parallel: parallel, tasks: taskNames.count, recordTasks: train.tasks)
        state.configHash = config.hash
        state.seed = config.seed
    }

    /// Saves `latest` (rank 0; every rank first adopts rank 0's batch-norm statistics, so
    /// all hold the model the checkpoint holds).
    func saveLatest() throws {
        parallel?.adoptLeaderBuffers(model.store)
        state.ranks = parallel.map { $0.size }
        state.weighting = step.state
        if isLeader { try Checkpoint.save(to: latestDir, store: model.store, optimizer: optimizer.state, state: state, method: config.method.name) }
    }

    /// Continues from the latest checkpoint (refusing a corrupt one or one of another config).
    public func resume() throws -> Bool {
        guard let dir = Checkpoint.existing(latestDir) else { return false }
        let (s, opt) = try Checkpoint.load(from: dir, into: model.store, configHash: config.hash)
        do { try optimizer.restore(opt) } catch {
            throw DataError(file: dir + "/optimizer.safetensors", "optimizer state does not fit the model: \(error)", fix: "start a fresh run")
        }
        // Every rank draws the same global batches whatever their number, and the checkpoint
        // holds rank 0's batch-norm statistics, so a run can go on under another rank count
        // (a preempted job that gets fewer nodes).
        let ranks = parallel?.size ?? 1
        if (s.ranks ?? 1) != ranks && isLeader {
            log("note: the checkpoint at step \(s.step) was written on \(s.ranks ?? 1) MPI rank(s); continuing on \(ranks). "
                + "The batches are the same, but sums over ranks run in another order (and each rank draws its own augmentation), "
                + "so the numbers differ slightly from a run that kept \(s.ranks ?? 1).")
        }
        state = s
        step.state = s.weighting
        guard isLeader else { return true }
        // Metrics logged after the checkpoint belong to the lost part of the run.
        if FileIO.exists(metrics.path) { try TensorBoard.start(directory, records: try metrics.truncate(after: s.step)) }
        return true
    }

    public func run() throws -> Outcome {
        try FileManager.default.createDirectory(atPath: directory + "/checkpoints", withIntermediateDirectories: true)
        if isLeader && state.step == 0 { try TensorBoard.start(directory) }
        let schedule: LearningRateSchedule = config.optimizer.schedule == .cosine
            ? .cosine(totalSteps: totalSteps, warmupSteps: config.optimizer.warmupSteps) : .constant
        let evalEvery = config.evalEvery > 0 ? config.evalEvery : stepsPerEpoch
        let progress = Progress(label: "train", total: totalSteps * config.batchSize, unit: "images", enabled: showProgress)
        progress.advance(state.step * config.batchSize)
        // Training loss and accuracy since the last evaluation and since the last training
        // record (both saved in checkpoints, so a resumed run logs the same numbers).
        var sinceEval = state.running
        var window = state.logWindow ?? .init()
        parallel?.perturbForTesting(model.store)
        let started = Date()
        let baseSeconds = state.trainSeconds
        while state.step < totalSteps {
            let order = config.samplingTemperature.map { EpochOrder(tasks: train.tasks, seed: config.seed, epoch: state.epoch, temperature: $0) }
                ?? EpochOrder(count: train.count, seed: config.seed, epoch: state.epoch)
            let batches = order.batches(size: config.batchSize, from: state.position, dropLast: true)
            if batches.isEmpty { state.epoch += 1; state.position = 0; continue }
            for records in batches {
                let (loss, correct, stop, lr) = try trainStep(records, schedule: schedule)
                let decisions = decisionsIn(records)
                sinceEval.add(loss: loss, correct: correct, count: decisions)
                window.add(loss: loss, correct: correct, count: decisions)
                if config.logEvery > 0 && window.steps == config.logEvery {
                    try record(.training(TrainingRecord(step: state.step, epoch: state.epoch, loss: window.meanLoss, accuracy: window.accuracy,
                                                        learningRate: Double(lr))))
                    window = .init()
                }
                progress.status = String(format: "epoch %d step %d loss %.3f acc %.1f%%", state.epoch + 1, state.step, sinceEval.meanLoss, sinceEval.accuracy)
                progress.advance(records.count)
                if state.position + config.batchSize > order.indices.count { state.epoch += 1; state.position = 0 }
                let due = sinceEval.steps == evalEvery || state.step == totalSteps
                if due || stop {
                    state.trainSeconds = baseSeconds + Date().timeIntervalSince(started)
                    if due {
                        try evaluate(since: sinceEval, lr: lr)
                        sinceEval = .init()
                    }
                    state.running = sinceEval
                    state.logWindow = window
                    try saveLatest()
                    if stop {
                        progress.finish()
                        log("stopped at step \(state.step); checkpoint saved in \(latestDir). Continue with --resume.")
                        return .interrupted
                    }
                }
                if state.step == totalSteps || state.position == 0 { break }
            }
        }
        progress.finish()
        state.finished = true
        state.trainSeconds = baseSeconds + Date().timeIntervalSince(started)
        try saveLatest()
        return .finished
    }

    /// One optimiser step on the global batch `records`: this rank's share prepared (its
    /// own augmentation stream), the step's gradients, the ranks' reduction, the update.
    /// Returns the batch's loss and correct predictions (over the ranks), whether to stop,
    /// and the learning rate used.
    func trainStep(_ records: ArraySlice<Int>, schedule: LearningRateSchedule) throws -> (Double, Int, Bool, Float) {
        let stepStart = DispatchTime.now().uptimeNanoseconds
        // Each rank draws its own augmentation stream (rank 0's is the one-process stream).
        var rng = RandomGenerator(seed: config.seed, stream: 0xA06_0000_0000 &+ UInt64(state.step) &+ UInt64(parallel?.rank ?? 0) << 40)
        var b = train.batch(parallel?.share(records) ?? records, training: true, augment: config.augment, rng: &rng,
                            threads: model.store.engine.threads)
        b.layout.lossWeights = lossWeights(global: records, batch: b.layout)
        model.beginStep(config.progress(step: state.step, stepsPerEpoch: stepsPerEpoch))
        let (logits, stepLoss) = step.run(&b, records: records, step: state.step)
        var loss = stepLoss
        var correct = correctInBatch(logits, b)
        var stop = stopRequested.load(ordering: .relaxed) || stopAfterSteps.map { state.step + 1 >= $0 } ?? false
        if let parallel {
            (loss, correct, stop) = parallel.reduceStep(model.store, loss: loss, correct: correct, stop: stop, gradientsReduced: step.averagesOverRanks)
        }
        guard loss.isFinite else {
            let last = Checkpoint.existing(latestDir).map { "the last good checkpoint is \($0) (step \(lastCheckpointStep()))" } ?? "no checkpoint was saved yet"
            throw TrainError(description: "loss is \(loss) at step \(state.step + 1) (epoch \(state.epoch + 1)); training stopped. \(last). Lower optimizer.lr or check the data.")
        }
        let lr = schedule.rate(base: config.optimizer.learningRate, step: state.step)
        optimizer.step(model.store, learningRate: lr)
        state.stepSeconds += Double(DispatchTime.now().uptimeNanoseconds - stepStart) / 1e9
        state.step += 1
        state.position += records.count
        return (loss, correct, stop, lr)
    }

    func lastCheckpointStep() -> Int {
        guard let dir = Checkpoint.existing(latestDir), let data = try? FileIO.read(dir + "/state.json"),
              let s = try? JSONDecoder().decode(TrainState.self, from: data) else { return 0 }
        return s.step
    }

    /// Appends a record to metrics.jsonl and its scalars to the TensorBoard file (rank 0).
    func record(_ r: MetricsRecord) throws {
        guard isLeader else { return }
        try metrics.append(r)
        try TensorBoard.append(r, to: directory)
    }

    /// A task stuck within 2 points of chance for 3 evaluations gets a warning line naming
    /// it, its adapter's growth and what to try (the small-task collapse of README's results).
    func warnNearChance(_ accuracy: [Double], growth: [Double]?) {
        guard classes.count == accuracy.count else { return }
        // A multi-label task's accuracy has no chance level of 1/classes.
        for t in Self.stuckAtChance(accuracy, classes: classes, streaks: &nearChance) where model.heads.labelKinds[t] == .single {
            let chance = 100 / Double(max(1, classes[t]))
            // Adapter t is task t's only when each task has its own.
            let own = config.method.adapters == .perTask
            let adapter = growth.map { $0.count == accuracy.count && own ? String(format: "; its adapter's growth ‖ΔW‖/‖W‖ is %.3f", $0[t]) : "" } ?? ""
            log(String(format: "warning: task %@ has stayed within 2 points of chance (%.1f%%) for 3 evaluations (validation %.2f%%)", taskNames[t], chance, accuracy[t])
                + adapter + ". If other tasks learn, shared batch-norm statistics may be set by them: try `batchnorm: per-task`, "
                + "a smaller adapters.alpha, or a lower optimizer.lr.")
        }
    }

    /// Updates each task's count of consecutive evaluations within 2 points of chance and
    /// returns the tasks whose count just reached 3 (each warned once per streak).
    public static func stuckAtChance(_ accuracy: [Double], classes: [Int], streaks: inout [Int]) -> [Int] {
        if streaks.count != accuracy.count { streaks = Array(repeating: 0, count: accuracy.count) }
        var stuck: [Int] = []
        for (t, acc) in accuracy.enumerated() {
            streaks[t] = acc <= 100 / Double(max(1, classes[t])) + 2 ? streaks[t] + 1 : 0
            if streaks[t] == 3 { stuck.append(t) }
        }
        return stuck
    }

    /// Per task, the factor on its mean cross-entropy (nil: all 1): n_t/B for proportional
    /// weighting, times N·n_t(rank)/n_t on a data-parallel rank.
    func lossWeights(global records: ArraySlice<Int>, batch: BatchLayout) -> [Double]? {
        guard parallel != nil || config.taskWeighting == .proportional else { return nil }
        let globalTasks = records.map { train.tasks[$0] }
        var weights = parallel?.lossWeights(global: globalTasks, mine: batch, tasks: taskNames.count) ?? Array(repeating: 1, count: taskNames.count)
        if config.taskWeighting == .proportional {
            var counts = [Int](repeating: 0, count: taskNames.count)
            for t in globalTasks { counts[Int(t)] += 1 }
            for t in weights.indices { weights[t] *= Double(counts[t]) / Double(max(1, records.count)) }
        }
        return weights
    }

    /// The tasks' gradients on a fixed probe (the first 32 training images of each task),
    /// compared per shared stage; nil for one task and under mpirun (not computed there).
    /// The gradients are of the tasks' classification losses: an auxiliary loss (MoLA-Router's
    /// TwD), which would sit in every task's gradient, is left out. Batch-norm running
    /// statistics are put back after.
    func conflictDiagnostics() throws -> [String: TaskConflict]? {
        guard taskNames.count > 1, parallel == nil else { return nil }
        if probe == nil {
            var taken = [Int](repeating: 0, count: taskNames.count), records: [Int] = []
            for i in 0..<train.count where taken[Int(train.tasks[i])] < 32 { taken[Int(train.tasks[i])] += 1; records.append(i) }
            var rng = RandomGenerator(seed: 0)
            probe = train.batch(ArraySlice(records), training: true, rng: &rng)
        }
        guard let probe, probe.layout.groups.count > 1 else { return nil }
        let store = model.store
        let buffers = store.entries.filter { !$0.trainable }.map { ($0, Array(UnsafeBufferPointer(start: store.values + $0.offset, count: $0.count))) }
        defer { for (e, v) in buffers { v.withUnsafeBufferPointer { (store.values + e.offset).update(from: $0.baseAddress!, count: e.count) } } }
        let grads = model.withoutAuxiliaryLoss {
            TaskGradients.compute(model, images: probe.images, labels: probe.labels, layout: probe.layout, tasks: taskNames.count).grads
        }
        store.zeroGradients()
        return TaskGradients.conflicts(grads, store: store)
    }

    /// Correct decisions of a batch, every task group's: one per image, or one per label of
    /// a multi-label task's image.
    func correctInBatch(_ logits: [Tensor], _ b: PreparedBatch) -> Int {
        b.layout.groups.enumerated().reduce(0) { $0 + TaskLoss.correct(model.heads.labelKinds[$1.element.task], logits: logits[$1.offset], labels: b.labels[$1.element.range]) }
    }

    /// The decisions `correctInBatch` counts for the global batch `records`.
    func decisionsIn(_ records: ArraySlice<Int>) -> Int {
        let h = model.heads
        return records.reduce(0) { n, r in let t = Int(train.tasks[r]); return n + TaskLoss.decisionsPerRow(h.labelKinds[t], classes: h.classes[t]) }
    }

    /// Validation: a record in metrics.jsonl, and the best checkpoint when it improves.
    func evaluate(since training: TrainState.Running, lr: Float) throws {
        if let parallel {
            parallel.adoptLeaderBuffers(model.store)
            try parallel.checkWeightsAgree(model.store, step: state.step)
        }
        let e = Evaluation.run(model, on: val, tasks: taskNames.count, parallel: parallel)
        var r = EvaluationRecord(step: state.step, epoch: state.epoch, trainLoss: training.meanLoss, trainAccuracy: training.accuracy,
                                 learningRate: Double(lr), valLoss: e.loss, valAverage: e.average,
                                 valPerTask: Dictionary(uniqueKeysWithValues: zip(taskNames, e.perTask)), seconds: state.trainSeconds)
        r.routerWeights = e.routerWeights
        (r.valAuc, r.valAucAverage, r.valBalancedAccuracy) = (e.auc(taskNames), e.aucAverage, e.balancedAccuracy(taskNames))
        r.stitch = model.columnMixing?.map { $0.map(Double.init) }
        r.taskWeights = step.taskWeights.map { Dictionary(uniqueKeysWithValues: zip(taskNames, $0)) }
        if let conflict = try conflictDiagnostics() {
            r.conflict = conflict
            r.conflictCosine = conflict["all"].map { TaskConflict.meanOffDiagonal($0.cosine) }
        }
        if let parallel {  // the weights every rank holds (checked equal above)
            r.ranks = parallel.size
            r.weightsFingerprint = String(format: "%016llx", DataParallel.fingerprint(model.store.values, count: model.store.count))
        }
        let adapted = model.adaptedConvolutions
        if !adapted.isEmpty {
            r.adapterGrowth = LayerSpectrum.adapterGrowth(adapted)
            r.adapterGrowthPerLayer = Dictionary(uniqueKeysWithValues: adapted.map { ($0.name, LayerSpectrum.adapterGrowth([$0])) })
        }
        try record(.evaluation(r))
        warnNearChance(e.perTask, growth: r.adapterGrowth)
        if showProgress {
            log(String(format: "step %d: train loss %.4f, val avg %.2f%% (", state.step, training.meanLoss, e.average)
                + zip(taskNames, e.perTask).map { String(format: "%@ %.2f", $0, $1) }.joined(separator: ", ") + ")")
        }
        let better: Bool
        switch config.selection {
        case .validationLoss: better = e.loss < (state.bestValidationLoss ?? .infinity)
        case .validationAUC: better = (e.aucAverage ?? -1) > (state.bestValidationAUC ?? -1) || state.bestStep < 0
        case .validationAccuracy, nil: better = e.average > state.bestValidation
        }
        if better {
            state.bestValidation = e.average
            state.bestValidationLoss = e.loss
            state.bestValidationAUC = e.aucAverage
            state.bestStep = state.step
            bestValidationEvaluation = e
            state.ranks = parallel.map { $0.size }
            if isLeader { try Checkpoint.save(to: bestDir, store: model.store, optimizer: [:], state: state, method: config.method.name) }
        }
    }
}
