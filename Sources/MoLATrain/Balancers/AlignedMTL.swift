import MoLASupport

extension Balancer {
    public static let alignedMTL = Balancer(
        name: "aligned-mtl", summary: "gradients made orthogonal, equal size (Senushkin 2023)",
        kind: .combinesGradients { _ in AlignedMTL() })
}

/// Aligned-MTL: the task gradients made orthogonal and of equal size (the smallest
/// singular value) through the Gram matrix's eigen-decomposition, then summed.
public struct AlignedMTL: WeightingCombiner {
    public init() {}

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
