import MoLASupport

/// A gradient balancer of the comparison table (the config's `weighting:`), one value each,
/// defined in its own file beside this one and listed once in `Balancer.all`. Two kinds:
/// a combiner of the tasks' gradients of the shared parameters (T backward passes per
/// step), or a weighting of the tasks' losses (one backward).
public struct Balancer: Registered {
    public enum Kind: Sendable {
        case combinesGradients(@Sendable (BalancerSetup) -> any GradientCombiner)
        case weightsLosses(@Sendable (BalancerSetup) -> any LossWeighting)
    }

    /// The config's `weighting:` value.
    public let name: String
    /// One line of `mola-train --help`.
    public let summary: String
    public let kind: Kind
    /// Why `rep_grad` does not apply to this combiner (nil: it does). Under `rep_grad` a
    /// combiner's direction must be a weighting of the task rows, Σ_t w_t·g_t, so that each
    /// task's part of the representation's gradient can carry its weight back through the
    /// backbone.
    public let notOnRepresentation: String?

    public init(name: String, summary: String, kind: Kind, notOnRepresentation: String? = nil) {
        self.name = name
        self.summary = summary
        self.kind = kind
        self.notOnRepresentation = notOnRepresentation
    }

    /// Whether a step needs each task's gradient (T backward passes).
    public var needsTaskGradients: Bool {
        if case .combinesGradients = kind { return true }
        return false
    }

    /// Every balancer, in the order help lists them.
    public static let all: [Balancer] = [.pcgrad, .mgda, .cagrad, .alignedMTL, .upgrad, .dualproj, .imtlG, .config,
                                         .gradvac, .graddrop, .nashMTL, .fairgrad, .dbMTL, .moco, .gradnorm,
                                         .famo, .ew, .gls, .dwa, .rlw, .uw, .imtlL, .stch]
}

/// What the rows of task gradients handed to a combiner are: each row's task (its index
/// among the run's tasks) and task loss (the global batch's mean), and the run's step.
public struct TaskRows: Sendable {
    public var tasks: [Int]
    public var losses: [Double]
    public var step: Int

    public init(tasks: [Int], losses: [Double], step: Int) {
        self.tasks = tasks
        self.losses = losses
        self.step = step
    }

    /// Rows 0..<count as tasks 0..<count, losses 1, step 0 (for calls outside a run).
    public init(count: Int) { self.init(tasks: Array(0..<count), losses: Array(repeating: 1, count: count), step: 0) }
}

/// What a balancer is made from: the run's task count, its optimiser's learning rate (for
/// the balancers that learn their own parameters) and its steps per epoch.
public struct BalancerSetup: Sendable {
    public var tasks: Int
    public var learningRate: Double
    public var stepsPerEpoch: Int

    public init(tasks: Int, learningRate: Double = 1e-3, stepsPerEpoch: Int = 1) {
        self.tasks = tasks
        self.learningRate = learningRate
        self.stepsPerEpoch = stepsPerEpoch
    }
}

/// Combines the tasks' gradients of the shared parameters into the step's direction.
public protocol GradientCombiner {
    /// `grads`: one row per task of the batch (task order), each the task's gradient of the
    /// shared parameters. `rng`: the step's own stream, for the methods that draw.
    func combine(_ grads: [[Float]], rng: inout RandomGenerator) -> [Float]
    /// The same, told which task each row is, its loss and the step: what a combiner
    /// keeping per-task state or using the losses needs. By default, `combine(_:rng:)`.
    func combine(_ grads: [[Float]], rows: TaskRows, rng: inout RandomGenerator) -> [Float]
    /// What a resumed run needs to continue exactly (empty for most). A combiner with state
    /// is a class, so that `combine` can update it.
    var state: [String: [Double]] { get set }
    /// The step's direction as weights on the rows (Σ_t w_t·g_t is `combine`'s result):
    /// what `rep_grad` scales each task's part of the representation's gradient by. By
    /// default the least-squares weights of `combine`'s direction, exact when it lies in
    /// the rows' span (as every combiner's without `notOnRepresentation` does).
    func combinationWeights(_ grads: [[Float]], rows: TaskRows, rng: inout RandomGenerator) -> [Double]
}

extension GradientCombiner {
    public func combine(_ grads: [[Float]], rows: TaskRows, rng: inout RandomGenerator) -> [Float] {
        combine(grads, rng: &rng)
    }
    public var state: [String: [Double]] { get { [:] } set {} }
    public func combinationWeights(_ grads: [[Float]], rows: TaskRows, rng: inout RandomGenerator) -> [Double] {
        leastSquaresWeights(grads, combine(grads, rows: rows, rng: &rng))
    }
}

/// The w minimising |Σ_t w_t·g_t − d|: w = G⁺·(g_t·d)_t with G the rows' Gram matrix
/// (the smallest such w when the rows are dependent).
func leastSquaresWeights(_ grads: [[Float]], _ d: [Float]) -> [Double] {
    multiply(SymmetricEigen.pseudoInverse(gram(grads)), grads.map { dot($0, d) })
}

/// A combiner whose result is Σ_t α_t g_t, with weights α computed from the gradients
/// (most of them from the Gram matrix alone).
public protocol WeightingCombiner: GradientCombiner {
    func weights(_ grads: [[Float]]) -> [Double]
}

extension WeightingCombiner {
    public func combine(_ grads: [[Float]], rng: inout RandomGenerator) -> [Float] { weightedSum(weights(grads), grads) }
    public func combinationWeights(_ grads: [[Float]], rows: TaskRows, rng: inout RandomGenerator) -> [Double] { weights(grads) }
}

/// Weights the tasks' losses from their values, one backward per step; may keep state
/// from step to step (checkpointed as named arrays of numbers).
public protocol LossWeighting {
    /// This step's factor on each task's mean loss (a task with no image in the batch has
    /// loss nil and gets weight 0). `step`: the run's step (0 first); `rng`: the step's own
    /// stream, alike on every rank, for the weightings that draw.
    mutating func weights(losses: [Double?], step: Int, rng: inout RandomGenerator) -> [Double]
    /// The weights to show at an evaluation, one per task (nil: nothing to show).
    var taskWeights: [Double]? { get }
    /// Everything it needs to continue exactly after a resume.
    var state: [String: [Double]] { get set }
}

/// A loss weighting that keeps nothing from step to step and shows no weights.
public protocol StatelessLossWeighting: LossWeighting {}

extension StatelessLossWeighting {
    public var taskWeights: [Double]? { nil }
    public var state: [String: [Double]] { get { [:] } set {} }
}

/// Σ_t alpha_t·g_t, summed in Double.
func weightedSum(_ alpha: [Double], _ grads: [[Float]]) -> [Float] {
    (0..<(grads.first?.count ?? 0)).map { i in Float(zip(alpha, grads).reduce(0.0) { $0 + $1.0 * Double($1.1[i]) }) }
}

func dot(_ a: [Float], _ b: [Float]) -> Double { zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } }

/// The Gram matrix G_ij = g_i·g_j of the task gradients.
func gram(_ grads: [[Float]]) -> [[Double]] {
    let t = grads.count
    return (0..<t).map { i in (0..<t).map { j in dot(grads[i], grads[j]) } }
}
