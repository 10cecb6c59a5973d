import MoLASupport

extension Balancer {
    public static let imtlG = Balancer(name: "imtl-g", summary: "equal projection on every task's direction (Liu 2021)",
                                       kind: .combinesGradients { _ in IMTLG() })
}

/// IMTL-G, the gradient half of impartial multi-task learning (Liu et al., ICLR 2021): the
/// combination Σ α_t g_t, Σ α = 1, whose projection on every task's unit gradient is the
/// same: G·α ∝ (|g_t|)_t, so α = G⁺·|g| normalised to sum 1 (TorchJD's `IMTLG`; α = 0 when
/// that sum is below 1e-12).
public struct IMTLG: WeightingCombiner {
    public init() {}

    public func weights(_ grads: [[Float]]) -> [Double] {
        let g = gram(grads)
        let v = multiply(SymmetricEigen.pseudoInverse(g), g.indices.map { g[$0][$0].squareRoot() })
        let sum = v.reduce(0, +)
        return abs(sum) < 1e-12 ? v.map { _ in 0 } : v.map { $0 / sum }
    }
}
