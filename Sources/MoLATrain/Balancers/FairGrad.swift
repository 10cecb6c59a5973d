import MoLASupport

extension Balancer {
    public static let fairgrad = Balancer(name: "fairgrad", summary: "α-fair shares of the step's gain, α = 1 (Ban 2024)",
                                          kind: .combinesGradients { _ in FairGrad() })
}

/// FairGrad (Ban & Ji, ICML 2024; TorchJD's `FairGrad`): weights x > 0 with G·x = x^(−1/α),
/// the α-fair allocation of the step's gain among the tasks; α = 1 (proportional fairness,
/// LibMTL's default) unless set.
public struct FairGrad: WeightingCombiner {
    public var alpha: Double
    public init(alpha: Double = 1) { self.alpha = alpha }

    public func weights(_ grads: [[Float]]) -> [Double] { PowerEquation.solve(gram(grads), power: 1 / alpha) }
}
