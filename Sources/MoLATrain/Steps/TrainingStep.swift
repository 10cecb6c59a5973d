import MoLAModel
import MoLASupport
import MoLATensor

/// One training step's work before the optimiser moves: the gradients of the batch in the
/// model's store, and the batch's logits and loss. The trainer's loop calls a step; which
/// one a run uses follows from its balancer (`make`).
protocol TrainingStep {
    /// Fills the store's gradients. `records`: the global batch (under mpirun, `batch` is
    /// this rank's share of it). The loss is the plain objective Σ_t of the tasks' mean
    /// losses, comparable between steps of any kind.
    mutating func run(_ batch: inout PreparedBatch, records: ArraySlice<Int>, step: Int) -> (logits: [Tensor], loss: Double)
    /// Whether the gradients it leaves are already averaged over the MPI ranks.
    var averagesOverRanks: Bool { get }
    /// Weights per task to record at an evaluation (a loss weighting's), if any.
    var taskWeights: [Double]? { get }
    /// What a resumed run needs to continue exactly (nil: nothing).
    var state: [String: [Double]]? { get set }
}

/// What every kind of step works with.
struct StepContext {
    let model: any TaskModel
    let parallel: DataParallel?
    let tasks: Int
    /// The task of every training record (for the global batch's task list).
    let recordTasks: [Int32]
    let seed: UInt64
    /// What a loss weighting is made with.
    let balancerSetup: BalancerSetup

    /// Each task's mean loss in this rank's batch, and in the global batch (the same
    /// without mpirun; nil: no image of the task).
    func taskLosses(_ logits: [Tensor], _ b: PreparedBatch) -> (local: [Double?], global: [Double?]) {
        let local = MoLATrain.taskLosses(logits, b, kinds: model.heads.labelKinds)
        var rows = [Int](repeating: 0, count: tasks)
        for g in b.layout.groups { rows[g.task] = g.range.count }
        return (local, parallel?.globalTaskLosses(local, rows: rows) ?? local)
    }
}

extension TrainConfig {
    /// The step this run trains with — its balancer, on the shared parameters or with
    /// `rep_grad` on the representation — for `tasks` tasks over `recordTasks` training
    /// records: what the trainer steps and `mola-train bench` times.
    func makeStep(model: any TaskModel, parallel: DataParallel?, tasks: Int, recordTasks: [Int32]) -> any TrainingStep {
        let setup = BalancerSetup(tasks: tasks, learningRate: Double(optimizer.learningRate),
                                  stepsPerEpoch: Trainer.stepsPerEpoch(records: recordTasks.count, batchSize: batchSize))
        return makeTrainingStep(weighting, repGrad: repGrad == true,
                                StepContext(model: model, parallel: parallel, tasks: tasks, recordTasks: recordTasks, seed: seed, balancerSetup: setup))
    }

    /// Where training stands at `step` of `stepsPerEpoch`, for the models that anneal over
    /// the run (LTB's branch draw).
    func progress(step: Int, stepsPerEpoch: Int) -> TrainingProgress {
        TrainingProgress(step: step, epoch: Double(step) / Double(max(1, stepsPerEpoch)), epochs: epochs, seed: seed)
    }
}

/// The step a run with `balancer` takes: plain, combining the tasks' gradients (of the
/// shared parameters, or with `repGrad` of the shared representation), or weighting their
/// losses.
func makeTrainingStep(_ balancer: Balancer?, repGrad: Bool = false, _ context: StepContext) -> any TrainingStep {
    switch balancer?.kind {
    case nil: PlainStep(context: context)
    case .combinesGradients(let make): GradientCombiningStep(context: context, combiner: make(context.balancerSetup), onRepresentation: repGrad)
    case .weightsLosses(let make): LossWeightingStep(context: context, weighting: make(context.balancerSetup))
    }
}

/// One forward and backward of the summed loss.
struct PlainStep: TrainingStep {
    let context: StepContext
    var averagesOverRanks: Bool { false }
    var taskWeights: [Double]? { nil }
    var state: [String: [Double]]? { get { nil } set {} }

    mutating func run(_ b: inout PreparedBatch, records: ArraySlice<Int>, step: Int) -> (logits: [Tensor], loss: Double) {
        let model = context.model
        model.store.zeroGradients()
        let logits = model.forward(b.images, layout: b.layout)
        return (logits, model.lossAndBackward(labels: b.labels, layout: b.layout).total)
    }
}

/// Every task's gradient (T passes; under mpirun for every task of the global batch,
/// averaged over the ranks), the shared parameters' combined by the combiner; or with
/// `onRepresentation` (`rep_grad`) the tasks' gradients of the shared representation
/// combined, in one pass (RepresentationGradients.swift).
struct GradientCombiningStep: TrainingStep {
    let context: StepContext
    var combiner: any GradientCombiner
    let onRepresentation: Bool
    /// The full form reduces the task gradients itself; the representation's form leaves
    /// the parameters' gradients to the trainer's all-reduce.
    var averagesOverRanks: Bool { !onRepresentation }
    var taskWeights: [Double]? { nil }
    var state: [String: [Double]]? {
        get { combiner.state.isEmpty ? nil : combiner.state }
        set { if let newValue { combiner.state = newValue } }
    }

    mutating func run(_ b: inout PreparedBatch, records: ArraySlice<Int>, step: Int) -> (logits: [Tensor], loss: Double) {
        if onRepresentation { return runOnRepresentation(&b, records: records, step: step) }
        let c = context
        let globalTasks = c.parallel.map { _ in Set(records.map { Int(c.recordTasks[$0]) }).sorted() }
        var r = TaskGradients.compute(c.model, images: b.images, labels: b.labels, layout: b.layout, tasks: c.tasks, taskList: globalTasks)
        if let parallel = c.parallel { r.grads = parallel.reduceTaskGradients(r.grads) }
        var rng = RandomGenerator(seed: c.seed, stream: 0xBA1_0000_0000 &+ UInt64(step))
        let losses = c.taskLosses(r.logits, b).global
        let rows = TaskRows(tasks: r.taskIDs, losses: r.taskIDs.map { losses[$0] ?? 0 }, step: step)
        TaskGradients.apply(r.grads, rows: rows, combiner: combiner, store: c.model.store, rng: &rng)
        return (r.logits, r.loss)
    }
}

/// One backward of the tasks' losses weighted by a loss weighting (under mpirun from the
/// global batch's task losses, so every rank weights alike).
struct LossWeightingStep: TrainingStep {
    let context: StepContext
    var weighting: any LossWeighting
    var averagesOverRanks: Bool { false }
    var taskWeights: [Double]? { weighting.taskWeights }
    var state: [String: [Double]]? {
        get { weighting.state }
        set { if let newValue { weighting.state = newValue } }
    }

    mutating func run(_ b: inout PreparedBatch, records: ArraySlice<Int>, step: Int) -> (logits: [Tensor], loss: Double) {
        let model = context.model
        model.store.zeroGradients()
        let logits = model.forward(b.images, layout: b.layout)
        let (local, global) = context.taskLosses(logits, b)
        var rng = RandomGenerator(seed: context.seed, stream: 0xBA1_0000_0000 &+ UInt64(step))
        let weights = weighting.weights(losses: global, step: step, rng: &rng)
        let base = b.layout.lossWeights
        b.layout.lossWeights = weights.enumerated().map { (base?[$0.offset] ?? 1) * $0.element }
        _ = model.lossAndBackward(labels: b.labels, layout: b.layout)
        return (logits, local.enumerated().reduce(0) { $0 + (base?[$1.offset] ?? 1) * ($1.element ?? 0) })
    }
}

/// Each task's mean loss in the batch (nil: no image of the task in it; a batch holds one
/// group per task).
func taskLosses(_ logits: [Tensor], _ b: PreparedBatch, kinds: [LabelKind]) -> [Double?] {
    var out = [Double?](repeating: nil, count: kinds.count)
    for (i, g) in b.layout.groups.enumerated() { out[g.task] = TaskLoss.loss(kinds[g.task], logits: logits[i], labels: b.labels[g.range]) }
    return out
}
