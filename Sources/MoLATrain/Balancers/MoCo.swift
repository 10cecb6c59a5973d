import Foundation
import MoLASupport

extension Balancer {
    public static let moco = Balancer(name: "moco", summary: "tracked gradients, min-norm weights by steps (Fernando 2023)",
                                      kind: .combinesGradients { _ in MoCo() },
                                      notOnRepresentation: "its direction is made of running averages of past steps' gradients, not a weighting of this step's task rows")
}

/// MoCo (Fernando et al., ICLR 2023; LibMTL's `MoCo`: β = 0.5, σ_β = 0.5, γ = 0.1, σ_γ = 0.5,
/// ρ = 0): each task's gradient rescaled to its loss's size, g'_t = g_t/(|g_t| + 1e-8)·ℓ_t,
/// tracked as y_t ← y_t − β/k^σ_β·(y_t − g'_t); the weights λ (from 1/T) take one step
/// λ ← softmax(λ − γ/k^σ_γ·(YYᵀ + ρI)λ); the result Yᵀλ. For a batch without some task the
/// step runs over the tasks present, their share of λ kept.
public final class MoCo: GradientCombiner, @unchecked Sendable {
    public var beta = 0.5, betaSigma = 0.5, gamma = 0.1, gammaSigma = 0.5, rho = 0.0
    var tracked = TaskBuffers(), lambda: [Double] = [], steps = 0

    public init() {}

    public var state: [String: [Double]] {
        get { var s = tracked.state; s["lambda"] = lambda; s["steps"] = [Double(steps)]; return s }
        set { tracked.state = newValue; lambda = newValue["lambda"] ?? lambda; steps = Int(newValue["steps"]?.first ?? 0) }
    }

    public func combine(_ grads: [[Float]], rng: inout RandomGenerator) -> [Float] {
        combine(grads, rows: TaskRows(count: grads.count), rng: &rng)
    }

    public func combine(_ grads: [[Float]], rows: TaskRows, rng: inout RandomGenerator) -> [Float] {
        let (tasks, losses) = (rows.tasks, rows.losses)
        steps += 1
        let width = grads.first?.count ?? 0, n = (tasks.max() ?? -1) + 1
        if lambda.count < n {  // new tasks start at 1/T of the run's tasks seen so far
            lambda = (0..<n).map { _ in 1 / Double(n) }
        }
        let rate = beta / pow(Double(steps), betaSigma)
        var y: [[Double]] = []
        for (i, t) in tasks.enumerated() {
            let scale = losses[i] / (norm(grads[i]) + 1e-8), old = tracked.row(t, width: width)
            tracked.rows[t] = (0..<width).map { k in old[k] - rate * (old[k] - Double(grads[i][k]) * scale) }
            y.append(tracked.rows[t])
        }
        let m = tasks.count, share = tasks.reduce(0.0) { $0 + lambda[$1] }
        let l = tasks.map { lambda[$0] }
        let yy = (0..<m).map { i in (0..<m).map { j in zip(y[i], y[j]).reduce(0) { $0 + $1.0 * $1.1 } + (i == j ? rho : 0) } }
        let stepSize = gamma / pow(Double(steps), gammaSigma)
        let moved = (0..<m).map { i in l[i] - stepSize * (0..<m).reduce(0.0) { $0 + yy[i][$1] * l[$1] } }
        let s = softmax(moved)
        for (i, t) in tasks.enumerated() { lambda[t] = share * s[i] }
        let weights = tasks.map { lambda[$0] }
        return (0..<width).map { k in Float((0..<m).reduce(0.0) { $0 + weights[$1] * y[$1][k] }) }
    }
}
