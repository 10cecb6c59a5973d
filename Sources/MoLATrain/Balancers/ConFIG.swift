import MoLASupport

extension Balancer {
    public static let config = Balancer(name: "config", summary: "direction at equal angles to every task (Liu 2024)",
                                        kind: .combinesGradients { _ in ConFIG() })
}

/// ConFIG, conflict-free inverse gradients (Liu et al., ICLR 2025; TorchJD's `ConFIG`): the
/// unit direction d whose dot product with every task's unit gradient is the same — d ∝
/// U⁺·1 with U the unit gradients' rows — times the length Σ_t g_t·d.
///
/// In the Gram matrix: with n_t = |g_t| and Ĝ = G/(n nᵀ) (the unit rows' Gram matrix),
/// U⁺·1 = Σ_t c_t g_t/n_t for c = Ĝ⁺·1, whose norm is √(cᵀĜc).
public struct ConFIG: WeightingCombiner {
    public init() {}

    public func weights(_ grads: [[Float]]) -> [Double] {
        let g = gram(grads), t = g.count
        let n = (0..<t).map { g[$0][$0].squareRoot() }
        let unitGram = (0..<t).map { i in (0..<t).map { j in n[i] > 0 && n[j] > 0 ? g[i][j] / (n[i] * n[j]) : 0 } }
        let c = multiply(SymmetricEigen.pseudoInverse(unitGram), Array(repeating: 1, count: t))
        let norm = zip(c, multiply(unitGram, c)).reduce(0) { $0 + $1.0 * $1.1 }.squareRoot()
        guard norm > 0 else { return Array(repeating: 0, count: t) }
        let direction = (0..<t).map { n[$0] > 0 ? c[$0] / (n[$0] * norm) : 0 }  // d = Σ direction_t g_t
        let length = multiply(g, direction).reduce(0, +)                          // Σ_t g_t·d
        return direction.map { $0 * length }
    }
}
