import MoLASupport
import MoLATensor

/// The loss of one batch: Σ_t mean CE_t, plus an auxiliary term (TwD for MoLA-Router).
public struct BatchLoss: Sendable {
    public var classification: Double
    public var auxiliary: Double
    public var total: Double { classification + auxiliary }
}

/// A multi-task classifier as the trainer sees it. Three kinds: a backbone with heads
/// (uniform, single-task, MoLA-Grad), MoLA-Router, and MMoE.
public protocol TaskModel: AnyObject {
    var store: ParameterStore { get }
    /// One classification head per task.
    var heads: TaskHeads { get }
    /// Logits of each task group of the batch (the batch grouped by task).
    func forward(_ images: Tensor, layout: BatchLayout) -> [Tensor]
    /// After a training `forward`: the loss and its gradients into `store`.
    func lossAndBackward(labels: [Int32], layout: BatchLayout) -> BatchLoss
    /// Convolutions that carry adapters, by name (for the spectral analysis).
    var adaptedConvolutions: [(name: String, conv: Conv)] { get }
    /// Every convolution of the shared backbone(s), by name.
    var convolutions: [(name: String, conv: Conv)] { get }
    /// Per-image adapter or expert weights of the last forward (MoLA-Router, the gates of
    /// MMoE…), batch × K.
    var lastGates: Tensor? { get }
    /// Learned mixing of columns, one T×T matrix per mixing point (Cross-Stitch).
    var columnMixing: [[Float]]? { get }
    /// Runs `body` with the auxiliary loss (MoLA-Router's TwD) switched off, so gradients
    /// taken inside are of the tasks' classification losses alone.
    func withoutAuxiliaryLoss<T>(_ body: () throws -> T) rethrows -> T
    /// Told before each training step where the run is (LTB's schedule and draws).
    func beginStep(_ progress: TrainingProgress)
}

extension TaskModel {
    public var adaptedConvolutions: [(name: String, conv: Conv)] { convolutions.filter { $0.conv.adapters != nil } }
    public var lastGates: Tensor? { nil }
    public var columnMixing: [[Float]]? { nil }
    public func withoutAuxiliaryLoss<T>(_ body: () throws -> T) rethrows -> T { try body() }
    public func beginStep(_ progress: TrainingProgress) {}
}

/// A model whose heads all read one representation, the backbone's features (batch ×
/// features): what `rep_grad` takes the tasks' gradients of. `lossAndBackward` is the two
/// calls below in turn.
public protocol SharedRepresentationModel: TaskModel {
    /// After a training `forward`: the loss, the heads' gradients into `store`, and the
    /// gradient of the loss with respect to the representation (each row from its own task's
    /// loss); nothing below the representation is touched.
    func lossAndRepresentationGradient(labels: [Int32], layout: BatchLayout) -> (loss: BatchLoss, gradient: Tensor)
    /// The backward through the backbone from a gradient of the representation.
    func backward(representationGradient: Tensor)
}

/// Σ_t of the tasks' mean losses (cross-entropy, or binary cross-entropy per label for a
/// multi-label task) over the groups; writes each group's dLogits.
func classificationLoss(logits: [Tensor], heads: TaskHeads, labels: [Int32], layout: BatchLayout, dLogits: inout [Tensor]) -> Double {
    if dLogits.count != logits.count { dLogits = logits.map { _ in Tensor(zeros: [0]) } }
    var loss = 0.0
    for (i, g) in layout.groups.enumerated() {
        dLogits[i].reuse(logits[i].shape)
        let c = heads.classes[g.task]
        let weight = layout.lossWeights?[g.task] ?? 1
        loss += weight * labels[g.range].withUnsafeBufferPointer { lb in
            TaskLoss.loss(heads.labelKinds[g.task], rows: g.range.count, classes: c, logits: logits[i].pointer, labels: lb.baseAddress!,
                          dLogits: dLogits[i].mutablePointer())
        }
        if weight != 1 {
            let d = dLogits[i].mutablePointer(), f = Float(weight)
            for k in 0..<(g.range.count * c) { d[k] *= f }
        }
    }
    return loss
}
