import Foundation
import MoLAModel
import MoLAReport
import MoLASupport
import MoLATensor

/// Each task's gradient of the model, and what is computed from them: the step of a
/// gradient combiner and the conflict diagnostics of every evaluation. Task t's gradient
/// comes from a forward and backward of the batch with only task t's loss (T passes: the
/// combiners' price).
enum TaskGradients {
    /// The shared parameters (by role: the backbone and a router), their arena ranges in
    /// arena order, each with its stage for the per-stage diagnostics (the name's first
    /// component: `stem`, `stage2`, `conv5`; `expert0`, `column1`).
    static func sharedRanges(_ store: ParameterStore) -> [(range: Range<Int>, stage: String)] {
        store.ranges { $0.isShared }.map { ($0.range, String($0.entry.name.split(separator: ".")[0])) }
    }

    /// Each task's gradient of the whole arena (only that task's loss), the summed loss and
    /// the batch's logits; for the tasks of the batch's groups, or of `taskList` (a
    /// data-parallel rank computes every task of the global batch, one pass each even for a
    /// task it holds no image of: synchronised batch norm needs every rank in every pass).
    /// Batch-norm running statistics move once per pass (as in the reference, which runs
    /// its encoder once per task).
    static func compute(_ model: any TaskModel, images: Tensor, labels: [Int32], layout: BatchLayout, tasks: Int, taskList: [Int]? = nil)
        -> (grads: [[Float]], taskIDs: [Int], loss: Double, logits: [Tensor]) {
        let store = model.store
        var grads: [[Float]] = [], ids: [Int] = [], loss = 0.0, logits: [Tensor] = []
        for task in taskList ?? layout.groups.map(\.task) {
            var one = layout
            one.lossWeights = (0..<tasks).map { t in t == task ? (layout.lossWeights?[t] ?? 1) : 0 }
            store.zeroGradients()
            let out = model.forward(images, layout: one)
            if logits.isEmpty { logits = out.map { t in var c = Tensor(uninitialized: t.shape); c.mutablePointer().update(from: t.pointer, count: t.count); return c } }
            loss += model.lossAndBackward(labels: labels, layout: one).total
            grads.append(Array(UnsafeBufferPointer(start: store.gradients, count: store.count)))
            ids.append(task)
        }
        return (grads, ids, loss, logits)
    }

    /// Writes the step's gradient into the store: every parameter of a task's own (its head,
    /// adapter, gate or modules appear only in its task's gradient) gets the sum of the
    /// tasks' gradients, the shared ones the combiner's direction.
    static func apply(_ grads: [[Float]], rows: TaskRows, combiner: any GradientCombiner, store: ParameterStore, rng: inout RandomGenerator) {
        let shared = sharedRanges(store)
        for i in 0..<store.count { store.gradients[i] = grads.reduce(0) { $0 + $1[i] } }
        let vectors = grads.map { g in shared.flatMap { g[$0.range] } }
        let combined = combiner.combine(vectors, rows: rows, rng: &rng)
        var k = 0
        for (range, _) in shared { for i in range { store.gradients[i] = combined[k]; k += 1 } }
    }

    /// Conflict diagnostics of one batch: per shared stage, the task × task cosine of the
    /// task gradients, the fraction of conflicting pairs (cosine < 0) and the gradient
    /// magnitude similarity 2|g_i||g_j| / (|g_i|² + |g_j|²); "all" is the whole shared part.
    static func conflicts(_ grads: [[Float]], store: ParameterStore) -> [String: TaskConflict] {
        let shared = sharedRanges(store)
        var stages = Dictionary(grouping: shared, by: \.stage).mapValues { $0.map(\.range) }
        stages["all"] = shared.map(\.range)
        return stages.mapValues { ranges in
            let v = grads.map { g in ranges.flatMap { g[$0] } }
            let t = v.count, norms = v.map { dot($0, $0).squareRoot() }
            var cos = [[Double]](repeating: [Double](repeating: 1, count: t), count: t), gms = cos
            var pairs = 0, conflicting = 0
            for i in 0..<t { for j in 0..<t where i != j {
                cos[i][j] = norms[i] > 0 && norms[j] > 0 ? dot(v[i], v[j]) / (norms[i] * norms[j]) : 0
                let sq = norms[i] * norms[i] + norms[j] * norms[j]
                gms[i][j] = sq > 0 ? 2 * norms[i] * norms[j] / sq : 1
                if i < j { pairs += 1; if cos[i][j] < 0 { conflicting += 1 } }
            } }
            return TaskConflict(cosine: cos, conflicting: pairs > 0 ? Double(conflicting) / Double(pairs) : 0, magnitudeSimilarity: gms)
        }
    }
}
