import MoLAModel
import MoLASupport
import MoLATensor

/// `rep_grad` (LibMTL's representation gradients): the combiner works on each task's
/// gradient of the representation the heads share, not of the shared parameters.
extension GradientCombiningStep {
    func runOnRepresentation(_ b: inout PreparedBatch, records: ArraySlice<Int>, step: Int) -> (logits: [Tensor], loss: Double) {
        let c = context
        guard let model = c.model as? any SharedRepresentationModel else {
            preconditionFailure("rep_grad on a model without one shared representation (the config check lets none through)")
        }
        // Every task of the global batch, so that all ranks hand the combiner the same rows
        // (a rank holding no image of a task contributes zeros).
        let tasks = c.parallel.map { _ in Set(records.map { Int(c.recordTasks[$0]) }).sorted() } ?? b.layout.groups.map(\.task).sorted()
        let r = RepresentationGradients.compute(model, images: b.images, labels: b.labels, layout: b.layout, tasks: tasks) { vectors, logits in
            let global = c.parallel?.reduceTaskGradients(vectors) ?? vectors
            var rng = RandomGenerator(seed: c.seed, stream: 0xBA1_0000_0000 &+ UInt64(step))
            let losses = c.taskLosses(logits, b).global
            return combiner.combinationWeights(global, rows: TaskRows(tasks: tasks, losses: tasks.map { losses[$0] ?? 0 }, step: step), rng: &rng)
        }
        return (r.logits, r.loss)
    }
}

/// The arithmetic of a `rep_grad` step on one batch. One forward; one backward through the
/// heads, which gives every task's part of the representation's gradient at once (each
/// row's gradient comes from its own task's loss alone, so the T backwards through the
/// heads of LibMTL's form are this one); the weights w_t from the tasks' vectors; then one
/// backward through the backbone with task t's rows scaled by w_t. The backbone so gets the
/// gradient of Σ_t w_t·L_t and the heads that of Σ_t L_t, for about a plain step's cost
/// instead of T passes. Everything below the representation follows the weighted
/// gradient, a task's own adapters included.
public enum RepresentationGradients {
    /// `tasks`: the rows handed to `weigh`, in order. Task t's vector is the sum over its
    /// rows of the representation's gradient (LibMTL's multi-input form, where each task's
    /// batch holds its own images), as wide as the representation; a task with no rows in
    /// the batch has zeros. `weigh` gets the vectors and the batch's logits and returns one
    /// weight per row.
    public static func compute(_ model: any SharedRepresentationModel, images: Tensor, labels: [Int32], layout: BatchLayout, tasks: [Int],
                               weigh: ([[Float]], [Tensor]) -> [Double]) -> (logits: [Tensor], loss: Double, vectors: [[Float]], weights: [Double]) {
        model.store.zeroGradients()
        let logits = model.forward(images, layout: layout)
        let (loss, representationGradient) = model.lossAndRepresentationGradient(labels: labels, layout: layout)
        var gradient = representationGradient
        let width = gradient.count / max(1, layout.count)
        let g = gradient.mutablePointer()
        var vectors = tasks.map { _ in [Float](repeating: 0, count: width) }
        for group in layout.groups {
            guard let row = tasks.firstIndex(of: group.task) else { continue }
            for i in group.range { for k in 0..<width { vectors[row][k] += g[i * width + k] } }
        }
        let weights = weigh(vectors, logits)
        for group in layout.groups {
            guard let row = tasks.firstIndex(of: group.task) else { continue }
            let w = Float(weights[row])
            for i in group.range { for k in 0..<width { g[i * width + k] *= w } }
        }
        model.backward(representationGradient: gradient)
        return (logits, loss.total, vectors, weights)
    }
}
