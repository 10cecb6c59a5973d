import Foundation
import MoLASupport

extension Balancer {
    public static let famo = Balancer(name: "famo", summary: "loss weights evening out log-loss decrease (Liu 2023)",
                                      kind: .weightsLosses { FAMO(tasks: $0.tasks) })
}

/// FAMO, fast adaptive multitask optimisation (Liu et al., NeurIPS 2023): one backward per
/// step, the tasks' losses weighted so that their log-losses fall at similar rates.
///
/// Logits ξ (one per task), z = softmax(ξ). The step's objective is Σ_t z_t·log ℓ_t / c with
/// c = Σ_t z_t/ℓ_t: its gradient weights task t's loss by z_t/(c·ℓ_t) (the weights sum to
/// 1; here times T, so that equal losses give uniform's step and uniform's learning rate
/// fits). ξ learns from how much each log-loss fell: δ_t = log ℓ_t(before) − log ℓ_t(after),
/// ξ's gradient Jᵀδ (J the softmax's Jacobian), one Adam step (lr 0.025, L2 0.001, the
/// paper's). As LibMTL's FAMO, "after" is the next step's batch (no extra forward).
public struct FAMO: LossWeighting, Equatable, Sendable {
    public var logits: [Double]
    var adam: ScalarAdam
    /// The losses the last weights were computed from (nil before the first step).
    var previous: [Double]?
    static let learningRate = 0.025, decay = 0.001, epsilon = 1e-8

    public init(tasks: Int) {
        logits = Array(repeating: 0, count: tasks)
        adam = ScalarAdam(count: tasks, learningRate: Self.learningRate)
    }

    public var taskWeights: [Double]? { softmax }

    public var state: [String: [Double]] {
        get {
            var s = adam.state
            s["logits"] = logits
            s["previous"] = previous
            return s
        }
        set {
            logits = newValue["logits"] ?? logits
            adam.state = newValue
            previous = newValue["previous"]
        }
    }

    public var softmax: [Double] { MoLATrain.softmax(logits) }

    /// Updates ξ from the fall of each task's loss since the last call, then returns this
    /// step's loss weights (a task absent from the batch, loss nil, gets weight 0 and
    /// leaves ξ's update out).
    public mutating func weights(losses: [Double?], step: Int = 0, rng: inout RandomGenerator) -> [Double] {
        let t = logits.count
        if let previous {
            let delta = (0..<t).map { i in losses[i].map { log(previous[i] + Self.epsilon) - log($0 + Self.epsilon) } ?? 0 }
            let z = softmax
            let mean = zip(z, delta).reduce(0) { $0 + $1.0 * $1.1 }
            adam.step(&logits, gradient: (0..<t).map { z[$0] * (delta[$0] - mean) + Self.decay * logits[$0] })
        }
        previous = (0..<t).map { losses[$0] ?? previous?[$0] ?? 1 }
        let z = softmax
        let c = (0..<t).reduce(0.0) { acc, i in acc + (losses[i].map { z[i] / ($0 + Self.epsilon) } ?? 0) }
        return (0..<t).map { i in losses[i].map { c > 0 ? Double(t) * z[i] / (c * ($0 + Self.epsilon)) : 0 } ?? 0 }
    }
}
