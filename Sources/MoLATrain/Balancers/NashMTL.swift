import MoLASupport

extension Balancer {
    public static let nashMTL = Balancer(name: "nash-mtl", summary: "the tasks' Nash bargaining solution (Navon 2022)",
                                         kind: .combinesGradients { _ in NashMTL() })
}

/// Nash-MTL (Navon et al., ICML 2022): weights α > 0 with Ĝ·α = 1/α, Ĝ = G/‖G‖_F (each
/// task's share of the step's gain equals the inverse of its weight, the bargaining
/// solution), then the step scaled down to norm 1 if longer (TorchJD's `NashMTL`,
/// max_norm 1). The paper's equation is solved exactly here; TorchJD approximates it by up
/// to 20 convex sub-problems and stops at ‖Ĝα − 1/α‖ < 1e-3.
public struct NashMTL: WeightingCombiner {
    public var maxNorm = 1.0
    public init() {}

    public func weights(_ grads: [[Float]]) -> [Double] {
        let g = gram(grads)
        let frobenius = g.joined().reduce(0) { $0 + $1 * $1 }.squareRoot()
        guard frobenius > 0 else { return grads.map { _ in 0 } }
        let alpha = PowerEquation.solve(g.map { $0.map { $0 / frobenius } }, power: 1)
        let norm = max(0, zip(alpha, multiply(g, alpha)).reduce(0) { $0 + $1.0 * $1.1 }).squareRoot()
        return maxNorm > 0 && norm > maxNorm ? alpha.map { $0 * maxNorm / norm } : alpha
    }
}
