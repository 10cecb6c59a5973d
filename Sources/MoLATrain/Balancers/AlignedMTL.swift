import MoLASupport

extension Balancer {
    public static let alignedMTL = Balancer(
        name: "aligned-mtl", summary: "gradients made orthogonal, equal size (Senushkin 2023)",
        kind: .combinesGradients { AlignedMTL() })
}

/// Aligned-MTL: the task gradients made orthogonal and of equal size (the smallest
/// singular value) through the Gram matrix's eigen-decomposition, then summed.
public struct AlignedMTL: GradientCombiner {
    public init() {}

    public func combine(_ grads: [[Float]], rng: inout RandomGenerator) -> [Float] { weightedSum(weights(grads), grads) }

    /// The weights α (the result is Σ α_t g_t): with G's Gram matrix M = V Λ Vᵀ (eigenvalues
    /// above a rank tolerance kept), B = √λ_min · V Λ^(-1/2) Vᵀ makes the aligned gradients
    /// G·B orthogonal with equal norms √λ_min; α = B's column sums, as LibMTL (the aligned
    /// gradients summed, so the step's scale is uniform's).
    public func weights(_ grads: [[Float]]) -> [Double] {
        let t = grads.count
        guard t > 1 else { return Array(repeating: 1, count: t) }
        let (values, vectors) = SymmetricEigen.decompose(gram(grads))
        let tolerance = (values.max() ?? 0) * Double(t) * Double(Float.ulpOfOne)
        let kept = values.indices.filter { values[$0] > tolerance }
        guard let smallest = kept.map({ values[$0] }).min() else { return Array(repeating: 0, count: t) }
        // B[i][j] = √λ_min Σ_k V[i][k] V[j][k] / √λ_k; α_j = Σ_i B[i][j].
        return (0..<t).map { j in
            smallest.squareRoot() * kept.reduce(0.0) { acc, k in
                acc + (0..<t).reduce(0.0) { $0 + vectors[$1][k] } * vectors[j][k] / values[k].squareRoot()
            }
        }
    }
}

/// Eigenvalues and eigenvectors (columns) of a small symmetric matrix, by cyclic Jacobi
/// rotations (exact enough for T × T Gram matrices; T is the task count).
public enum SymmetricEigen {
    public static func decompose(_ m: [[Double]]) -> (values: [Double], vectors: [[Double]]) {
        let n = m.count
        var a = m, v = (0..<n).map { i in (0..<n).map { $0 == i ? 1.0 : 0 } }
        for _ in 0..<100 {
            let off = (0..<n).reduce(0.0) { acc, i in acc + (0..<n).reduce(0.0) { $1 == i ? $0 : $0 + a[i][$1] * a[i][$1] } }
            let scale = (0..<n).reduce(0.0) { $0 + a[$1][$1] * a[$1][$1] }
            if off <= 1e-30 * max(scale, 1e-300) { break }
            for p in 0..<n { for q in (p + 1)..<n where a[p][q] != 0 {
                let theta = (a[q][q] - a[p][p]) / (2 * a[p][q])
                let t = (theta >= 0 ? 1.0 : -1.0) / (abs(theta) + (theta * theta + 1).squareRoot())
                let c = 1 / (t * t + 1).squareRoot(), s = t * c
                for k in 0..<n {  // A ← Jᵀ A J, V ← V J
                    let (akp, akq) = (a[k][p], a[k][q])
                    a[k][p] = c * akp - s * akq; a[k][q] = s * akp + c * akq
                }
                for k in 0..<n {
                    let (apk, aqk) = (a[p][k], a[q][k])
                    a[p][k] = c * apk - s * aqk; a[q][k] = s * apk + c * aqk
                }
                for k in 0..<n {
                    let (vkp, vkq) = (v[k][p], v[k][q])
                    v[k][p] = c * vkp - s * vkq; v[k][q] = s * vkp + c * vkq
                }
            } }
        }
        return ((0..<n).map { a[$0][$0] }, v)
    }
}
