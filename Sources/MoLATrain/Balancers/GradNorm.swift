import Foundation
import MoLASupport

extension Balancer {
    public static let gradnorm = Balancer(name: "gradnorm", summary: "loss weights learnt to even out gradient norms (Chen 2018)",
                                          kind: .combinesGradients { GradNorm(tasks: $0.tasks, learningRate: $0.learningRate, stepsPerEpoch: $0.stepsPerEpoch) })
}

/// GradNorm (Chen et al., ICML 2018; LibMTL's `GradNorm`, α = 1.5): in the first epoch the
/// plain sum, while each task's mean loss L₀ is recorded; then weights w = T·softmax(s) and
/// the step Σ_t w_t g_t, and the logits s take an Adam step (the run's lr; LibMTL steps them
/// in the model's optimiser) on Σ_t |w_t|g_t| − Ḡ·r_t^α|, with Ḡ the mean of w_t|g_t| and
/// r_t = (ℓ_t/L₀_t) over its mean, both held constant: tasks that fall behind their start
/// get larger gradients. The norms are of the shared parameters' gradients (LibMTL's
/// form; the paper's last shared layer is a cheaper variant).
public final class GradNorm: GradientCombiner, @unchecked Sendable {
    public var alpha = 1.5
    let stepsPerEpoch: Int
    public var logits: [Double]
    var adam: ScalarAdam
    var firstEpochSums: [Double], firstEpochCounts: [Double]

    public init(tasks: Int, learningRate: Double, stepsPerEpoch: Int) {
        self.stepsPerEpoch = max(1, stepsPerEpoch)
        logits = Array(repeating: 1, count: tasks)
        adam = ScalarAdam(count: tasks, learningRate: learningRate)
        firstEpochSums = Array(repeating: 0, count: tasks)
        firstEpochCounts = firstEpochSums
    }

    public var state: [String: [Double]] {
        get { var s = adam.state; s["logits"] = logits; s["first_epoch_sums"] = firstEpochSums; s["first_epoch_counts"] = firstEpochCounts; return s }
        set {
            adam.state = newValue
            logits = newValue["logits"] ?? logits
            firstEpochSums = newValue["first_epoch_sums"] ?? firstEpochSums
            firstEpochCounts = newValue["first_epoch_counts"] ?? firstEpochCounts
        }
    }

    /// w = T·softmax(s).
    public var weights: [Double] {
        softmax(logits).map { Double(logits.count) * $0 }
    }

    public func combine(_ grads: [[Float]], rng: inout RandomGenerator) -> [Float] { combine(grads, rows: TaskRows(count: grads.count), rng: &rng) }

    public func combine(_ grads: [[Float]], rows: TaskRows, rng: inout RandomGenerator) -> [Float] {
        let tasks = rows.tasks
        guard rows.step / stepsPerEpoch > 0 else {
            for (i, t) in tasks.enumerated() { firstEpochSums[t] += rows.losses[i]; firstEpochCounts[t] += 1 }
            return weightedSum(tasks.map { _ in 1 }, grads)
        }
        let w = weights, p = w.map { $0 / Double(w.count) }, m = tasks.count
        let norms = grads.map(norm)
        let scaled = (0..<m).map { w[tasks[$0]] * norms[$0] }, mean = scaled.reduce(0, +) / Double(m)
        let ratios = (0..<m).map { i in rows.losses[i] / max(firstEpochSums[tasks[i]] / max(firstEpochCounts[tasks[i]], 1), 1e-12) }
        let meanRatio = ratios.reduce(0, +) / Double(m)
        // ∂/∂s_k of Σ_i |w_{t_i} n_i − c_i|, with ∂w_t/∂s_k = w_t (δ_tk − p_k).
        let a = (0..<m).map { i -> Double in
            let d = scaled[i] - mean * pow(ratios[i] / meanRatio, alpha)
            return (d > 0 ? 1 : d < 0 ? -1 : 0) * norms[i]
        }
        let pull = (0..<m).reduce(0.0) { $0 + a[$1] * w[tasks[$1]] }
        var gradient = p.map { -$0 * pull }
        for i in 0..<m { gradient[tasks[i]] += a[i] * w[tasks[i]] }
        adam.step(&logits, gradient: gradient)
        return weightedSum(tasks.map { w[$0] }, grads)
    }
}
