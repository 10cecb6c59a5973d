import MoLASupport

extension Balancer {
    public static let mgda = Balancer(name: "mgda", summary: "min-norm point of the gradients' hull (Sener 2018)",
                                      kind: .combinesGradients { _ in MGDA() })
}

/// MGDA: the task gradients weighted by α on the simplex minimising |Σ α_t g_t|².
public struct MGDA: WeightingCombiner {
    public var iterations = 250
    public init() {}

    /// α by Frank–Wolfe on the Gram matrix (exact line search; the two-task case is the
    /// closed form's first step).
    public func weights(_ grads: [[Float]]) -> [Double] {
        let t = grads.count
        guard t > 1 else { return Array(repeating: 1, count: t) }
        let gram = gram(grads)
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
}
