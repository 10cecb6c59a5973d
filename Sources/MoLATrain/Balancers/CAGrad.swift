import MoLASupport

extension Balancer {
    public static let cagrad = Balancer(name: "cagrad", summary: "mean gradient turned to the worst task (Liu 2021)",
                                        kind: .combinesGradients { _ in CAGrad() })
}

/// Conflict-averse gradient descent: with g₀ the mean of the task gradients and G their Gram
/// matrix, w on the simplex minimising w·G·(1/T) + c·|g₀|·√(w·G·w) (Frank–Wolfe,
/// golden-section line search); then d = (g₀ + c·|g₀|/|g_w|·g_w) / (1 + c²), g_w = Σ w_t g_t
/// — LibMTL's form, rescaled so that with no conflict d stays near g₀'s size.
public struct CAGrad: GradientCombiner {
    /// The radius of the ball around g₀, in units of |g₀|.
    public var c: Double
    public var iterations = 100
    public init(c: Double = 0.4) { self.c = c }

    public func combine(_ grads: [[Float]], rng: inout RandomGenerator) -> [Float] {
        let t = grads.count, n = grads.first?.count ?? 0
        guard t > 1 else { return grads.first ?? [] }
        let gram = gram(grads)
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
}
