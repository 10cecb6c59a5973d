import Foundation
import MoLAData
import MoLAModel
import MoLASupport
import MoLATensor

/// Per-task gradients of the shared parameters, and what is computed from them: the
/// gradient balancers of the paper's comparison table (`weighting:`) and the conflict
/// diagnostics of every evaluation. Task t's gradient comes from a forward and backward
/// of the batch with only task t's loss (T passes: the balancers' price).
public enum GradientBalancing {
    public enum Weighting: String, Codable, CaseIterable, Sendable {
        /// Project each task's gradient off the others it conflicts with (Yu et al. 2020).
        case pcgrad
        /// The min-norm point of the convex hull of the task gradients (Sener & Koltun 2018).
        case mgda
        /// Conflict-averse: the mean gradient moved towards the worst-served task, within a
        /// ball of radius c·|g₀| (Liu et al. 2021; c = 0.4).
        case cagrad
        /// Aligned-MTL: the task gradients made orthogonal and of equal size (the smallest
        /// singular value) through the Gram matrix's eigen-decomposition, then summed
        /// (Senushkin et al. 2023).
        case alignedMTL = "aligned-mtl"
        /// FAMO: task-loss weights that even out the tasks' log-loss decrease rates, one
        /// backward per step (Liu et al. 2023; see `FAMO`).
        case famo
        /// Whether the method needs each task's gradient (T backward passes per step).
        var needsTaskGradients: Bool { self != .famo }
    }

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
    static func perTaskGradients(_ model: TaskModel, images: Tensor, labels: [Int32], layout: BatchLayout, tasks: Int, taskList: [Int]? = nil)
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

    /// Writes the step's gradient into the store: task-specific parameters get the sum of
    /// the tasks' gradients (each task's head and adapter only appear in its own), shared
    /// ones the balancer's combination.
    static func combine(_ grads: [[Float]], weighting: Weighting, store: ParameterStore, rng: inout RandomGenerator) {
        let shared = sharedRanges(store)
        for i in 0..<store.count { store.gradients[i] = grads.reduce(0) { $0 + $1[i] } }
        let vectors = grads.map { g in shared.flatMap { g[$0.range] } }
        let combined: [Float]
        switch weighting {
        case .pcgrad: combined = pcgrad(vectors, rng: &rng)
        case .mgda: combined = weightedSum(mgdaWeights(vectors), vectors)
        case .cagrad: combined = cagrad(vectors)
        case .alignedMTL: combined = weightedSum(alignedMTLWeights(vectors), vectors)
        case .famo:
            preconditionFailure("FAMO weights the losses; it has no per-task gradients to combine")
        }
        var k = 0
        for (range, _) in shared { for i in range { store.gradients[i] = combined[k]; k += 1 } }
    }

    /// Σ_t alpha_t·g_t, summed in Double.
    static func weightedSum(_ alpha: [Double], _ grads: [[Float]]) -> [Float] {
        (0..<(grads.first?.count ?? 0)).map { i in Float(zip(alpha, grads).reduce(0.0) { $0 + $1.0 * Double($1.1[i]) }) }
    }

    static func dot(_ a: [Float], _ b: [Float]) -> Double { zip(a, b).reduce(0.0) { $0 + Double($1.0) * Double($1.1) } }

    /// PCGrad: for each task i, its gradient with, for each other task j in random order,
    /// the component along g_j removed when they conflict (g_i·g_j < 0); the results summed.
    public static func pcgrad(_ grads: [[Float]], rng: inout RandomGenerator) -> [Float] {
        var out = [Float](repeating: 0, count: grads.first?.count ?? 0)
        for i in grads.indices {
            var g = grads[i]
            var others = grads.indices.filter { $0 != i }
            for k in stride(from: others.count - 1, to: 0, by: -1) { others.swapAt(k, rng.nextInt(below: k + 1)) }
            for j in others {
                let d = dot(g, grads[j]), n = dot(grads[j], grads[j])
                if d < 0, n > 0 { let f = Float(d / n); for k in g.indices { g[k] -= f * grads[j][k] } }
            }
            for k in out.indices { out[k] += g[k] }
        }
        return out
    }

    /// CAGrad: with g₀ the mean of the task gradients and G their Gram matrix, w on the
    /// simplex minimising w·G·(1/T) + c·|g₀|·√(w·G·w) (Frank–Wolfe, golden-section line
    /// search); then d = (g₀ + c·|g₀|/|g_w|·g_w) / (1 + c²), g_w = Σ w_t g_t — LibMTL's
    /// form, rescaled so that with no conflict d stays near g₀'s size.
    public static func cagrad(_ grads: [[Float]], c: Double = 0.4, iterations: Int = 100) -> [Float] {
        let t = grads.count, n = grads.first?.count ?? 0
        guard t > 1 else { return grads.first ?? [] }
        let gram = (0..<t).map { i in (0..<t).map { j in dot(grads[i], grads[j]) } }
        let gb = (0..<t).map { i in gram[i].reduce(0, +) / Double(t) }           // G·b, b = 1/T
        let g0Norm = max(0, gb.reduce(0, +) / Double(t)).squareRoot()             // |g₀|² = bᵀGb
        func objective(_ w: [Double]) -> Double {
            let ww = (0..<t).reduce(0.0) { acc, i in acc + w[i] * (0..<t).reduce(0.0) { $0 + gram[i][$1] * w[$1] } }
            return zip(w, gb).reduce(0) { $0 + $1.0 * $1.1 } + c * g0Norm * max(0, ww).squareRoot()
        }
        var w = [Double](repeating: 1 / Double(t), count: t)
        for _ in 0..<iterations {
            let gw = (0..<t).map { i in (0..<t).reduce(0.0) { $0 + gram[i][$1] * w[$1] } }
            let norm = max(1e-20, zip(w, gw).reduce(0) { $0 + $1.0 * $1.1 }).squareRoot()
            let grad = (0..<t).map { gb[$0] + c * g0Norm * gw[$0] / norm }
            let s = grad.indices.min { grad[$0] < grad[$1] }!
            func point(_ gamma: Double) -> [Double] { (0..<t).map { (1 - gamma) * w[$0] + (s == $0 ? gamma : 0) } }
            var (lo, hi) = (0.0, 1.0)
            for _ in 0..<40 {  // golden section on the convex 1-D restriction
                let a = hi - 0.618 * (hi - lo), b = lo + 0.618 * (hi - lo)
                if objective(point(a)) < objective(point(b)) { hi = b } else { lo = a }
            }
            let next = point((lo + hi) / 2)
            if objective(next) >= objective(w) - 1e-15 { break }
            w = next
        }
        let gwNorm = max(1e-20, (0..<t).reduce(0.0) { acc, i in acc + w[i] * (0..<t).reduce(0.0) { $0 + gram[i][$1] * w[$1] } }).squareRoot()
        let lambda = c * g0Norm / gwNorm
        return (0..<n).map { k in
            let g0 = grads.reduce(0.0) { $0 + Double($1[k]) } / Double(t)
            let gwk = (0..<t).reduce(0.0) { $0 + w[$1] * Double(grads[$1][k]) }
            return Float((g0 + lambda * gwk) / (1 + c * c))
        }
    }

    /// Aligned-MTL's weights α (the result is Σ α_t g_t): with G's Gram matrix M = V Λ Vᵀ
    /// (eigenvalues above a rank tolerance kept), B = √λ_min · V Λ^(-1/2) Vᵀ makes the
    /// aligned gradients G·B orthogonal with equal norms √λ_min; α = B's column sums, as
    /// LibMTL (the aligned gradients summed, so the step's scale is uniform's).
    public static func alignedMTLWeights(_ grads: [[Float]]) -> [Double] {
        let t = grads.count
        guard t > 1 else { return Array(repeating: 1, count: t) }
        let gram = (0..<t).map { i in (0..<t).map { j in dot(grads[i], grads[j]) } }
        let (values, vectors) = symmetricEigen(gram)
        let tolerance = (values.max() ?? 0) * Double(t) * Double(Float.ulpOfOne)
        let kept = values.indices.filter { values[$0] > tolerance }
        guard let smallest = kept.map({ values[$0] }).min() else { return Array(repeating: 0, count: t) }
        // B[i][j] = √λ_min Σ_k V[i][k] V[j][k] / √λ_k; α_j = Σ_i B[i][j].
        return (0..<t).map { j in
            smallest.squareRoot() * kept.reduce(0.0) { acc, k in
                acc + (0..<t).reduce(0.0) { $0 + vectors[$1][k] } * vectors[j][k] / values[k].squareRoot()
            }
        }
    }

    /// Eigenvalues and eigenvectors (columns) of a small symmetric matrix, by cyclic Jacobi
    /// rotations (exact enough for T × T Gram matrices; T is the task count).
    public static func symmetricEigen(_ m: [[Double]]) -> (values: [Double], vectors: [[Double]]) {
        let n = m.count
        var a = m, v = (0..<n).map { i in (0..<n).map { $0 == i ? 1.0 : 0 } }
        for _ in 0..<100 {
            let off = (0..<n).reduce(0.0) { acc, i in acc + (0..<n).reduce(0.0) { $1 == i ? $0 : $0 + a[i][$1] * a[i][$1] } }
            let scale = (0..<n).reduce(0.0) { $0 + a[$1][$1] * a[$1][$1] }
            if off <= 1e-30 * max(scale, 1e-300) { break }
            for p in 0..<n { for q in (p + 1)..<n where a[p][q] != 0 {
                let theta = (a[q][q] - a[p][p]) / (2 * a[p][q])
                let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                let c = 1 / (t * t + 1).squareRoot(), s = t * c
                for k in 0..<n {  // A ← Jᵀ A J, V ← V J
                    let (akp, akq) = (a[k][p], a[k][q])
                    a[k][p] = c * akp - s * akq; a[k][q] = s * akp + c * akq
                }
                for k in 0..<n {
                    let (apk, aqk) = (a[p][k], a[q][k])
                    a[p][k] = c * apk - s * aqk; a[q][k] = s * apk + c * aqk
                }
                for k in 0..<n {
                    let (vkp, vkq) = (v[k][p], v[k][q])
                    v[k][p] = c * vkp - s * vkq; v[k][q] = s * vkp + c * vkq
                }
            } }
        }
        return ((0..<n).map { a[$0][$0] }, v)
    }

    /// MGDA's weights: α on the simplex minimising |Σ α_t g_t|², by Frank–Wolfe on the
    /// Gram matrix (exact line search; the two-task case is the closed form's first step).
    public static func mgdaWeights(_ grads: [[Float]], iterations: Int = 250) -> [Double] {
        let t = grads.count
        guard t > 1 else { return Array(repeating: 1, count: t) }
        let gram = (0..<t).map { i in (0..<t).map { j in dot(grads[i], grads[j]) } }
        var alpha = [Double](repeating: 1 / Double(t), count: t)
        for _ in 0..<iterations {
            let grad = (0..<t).map { i in (0..<t).reduce(0.0) { $0 + gram[i][$1] * alpha[$1] } }  // G·α
            let s = grad.indices.min { grad[$0] < grad[$1] }!
            // Line search between α and the vertex e_s: minimise |(1−γ)v + γ g_s|².
            let vv = zip(alpha, grad).reduce(0.0) { $0 + $1.0 * $1.1 }, vs = grad[s], ss = gram[s][s]
            let denom = vv - 2 * vs + ss
            guard denom > 1e-20 else { break }
            let gamma = min(1, max(0, (vv - vs) / denom))
            if gamma < 1e-12 { break }
            for i in 0..<t { alpha[i] *= 1 - gamma }
            alpha[s] += gamma
        }
        return alpha
    }

    /// Conflict diagnostics of one batch: per shared stage, the task × task cosine of the
    /// task gradients, the fraction of conflicting pairs (cosine < 0) and the gradient
    /// magnitude similarity 2|g_i||g_j| / (|g_i|² + |g_j|²); "all" is the whole shared part.
    public struct Conflict: Codable, Equatable, Sendable {
        public var cosine: [[Double]]
        public var conflicting: Double
        public var magnitudeSimilarity: [[Double]]
    }

    static func conflicts(_ grads: [[Float]], store: ParameterStore) -> [String: Conflict] {
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
            return Conflict(cosine: cos, conflicting: pairs > 0 ? Double(conflicting) / Double(pairs) : 0, magnitudeSimilarity: gms)
        }
    }
}
