import Foundation
import MoLASupport

extension Balancer {
    public static let uw = Balancer(name: "uw", summary: "learnt uncertainty weights ℓ/2σ² + log σ (Kendall 2018)",
                                    kind: .weightsLosses { LearnedLossScales(.uncertainty, tasks: $0.tasks, learningRate: $0.learningRate) })
    public static let imtlL = Balancer(name: "imtl-l", summary: "learnt loss scales e^s·ℓ − s (Liu 2021)",
                                       kind: .weightsLosses { LearnedLossScales(.impartial, tasks: $0.tasks, learningRate: $0.learningRate) })
}

/// A learnt scale s_t per task, the objective Σ_t f(ℓ_t, s_t), the scales stepped by Adam
/// at the run's learning rate (LibMTL trains them in the model's optimiser; here they have
/// their own Adam, as `torch.optim.Adam` would step them alone):
/// - UW (Kendall et al., CVPR 2018; LibMTL's `UW`): f = ℓ/(2e^s) + s/2, s from −0.5, so
///   task t's loss is weighted 1/(2e^{s_t}) and ∂f/∂s = ½ − ℓ/(2e^s).
/// - IMTL-L, the loss half of IMTL (Liu et al., ICLR 2021; LibMTL's `IMTL`): f = e^s·ℓ − s,
///   s from 0, weight e^{s_t}, ∂f/∂s = e^s·ℓ − 1.
/// A task without a loss in the batch has weight 0 and its scale's gradient is 0.
public struct LearnedLossScales: LossWeighting, Equatable {
    public enum Form: Sendable { case uncertainty, impartial }
    let form: Form
    public var scales: [Double]
    var adam: ScalarAdam

    public init(_ form: Form, tasks: Int, learningRate: Double) {
        self.form = form
        scales = Array(repeating: form == .uncertainty ? -0.5 : 0, count: tasks)
        adam = ScalarAdam(count: tasks, learningRate: learningRate)
    }

    public var taskWeights: [Double]? { scales.map(factor) }

    public var state: [String: [Double]] {
        get { var s = adam.state; s["scales"] = scales; return s }
        set { scales = newValue["scales"] ?? scales; adam.state = newValue }
    }

    func factor(_ s: Double) -> Double { form == .uncertainty ? 1 / (2 * exp(s)) : exp(s) }

    public mutating func weights(losses: [Double?], step: Int, rng: inout RandomGenerator) -> [Double] {
        let w = losses.indices.map { losses[$0] == nil ? 0 : factor(scales[$0]) }
        let gradient = losses.indices.map { t in
            losses[t].map { form == .uncertainty ? 0.5 - $0 * w[t] : $0 * w[t] - 1 } ?? 0
        }
        adam.step(&scales, gradient: gradient)
        return w
    }
}
