/// The projection onto the dual cone of the task gradients that UPGrad and DualProj are
/// built on (Quinton & Rey, "Jacobian Descent for Multi-Objective Optimization", 2024):
/// the projection of Jᵀu onto {x : J·x ≥ 0} is Jᵀw with w = argmin vᵀGv subject to v ≥ u,
/// G = JJᵀ the Gram matrix (their Proposition 1).
enum DualCone {
    /// G as TorchJD prepares it before solving: divided by its trace (when the trace is at
    /// least 1e-4; else zero) and 1e-4 added to the diagonal, so it is positive definite.
    static func prepared(_ gram: [[Double]]) -> [[Double]] {
        let n = gram.count, trace = (0..<n).reduce(0.0) { $0 + gram[$1][$1] }
        return (0..<n).map { i in (0..<n).map { j in (trace < 1e-4 ? 0 : gram[i][j] / trace) + (i == j ? 1e-4 : 0) } }
    }

    /// w = argmin vᵀGv subject to v ≥ u, for G positive definite: with v = u + x, the
    /// bound-constrained problem min ½xᵀGx + (Gu)ᵀx, x ≥ 0, solved exactly by Lawson and
    /// Hanson's active-set method (finite; each step one small linear solve).
    static func project(_ u: [Double], gram g: [[Double]]) -> [Double] {
        let n = u.count, c = multiply(g, u)
        var x = [Double](repeating: 0, count: n), free = [Bool](repeating: false, count: n)
        let tolerance = 1e-13 * max(1, g.indices.map { g[$0][$0] }.max() ?? 1)
        for _ in 0..<(4 * n + 8) {
            let descent = zip(multiply(g, x), c).map { -($0 + $1) }
            guard let t = (0..<n).filter({ !free[$0] && descent[$0] > tolerance }).max(by: { descent[$0] < descent[$1] }) else { break }
            free[t] = true
            while true {
                let f = (0..<n).filter { free[$0] }
                let zf = solveLinear(f.map { i in f.map { g[i][$0] } }, f.map { -c[$0] })
                var z = [Double](repeating: 0, count: n)
                for (k, i) in f.enumerated() { z[i] = zf[k] }
                if f.allSatisfy({ z[$0] > 0 }) { x = z; break }
                // Step towards z until the first free variable reaches its bound; bind it.
                let alpha = f.filter { z[$0] <= 0 }.map { x[$0] / (x[$0] - z[$0]) }.min()!
                for i in f { x[i] += alpha * (z[i] - x[i]); if x[i] <= 1e-15 { x[i] = 0; free[i] = false } }
                if !free.contains(true) { break }
            }
        }
        return zip(u, x).map(+)
    }
}
