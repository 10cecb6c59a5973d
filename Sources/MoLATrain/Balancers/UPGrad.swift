import MoLASupport

extension Balancer {
    public static let upgrad = Balancer(name: "upgrad", summary: "each gradient projected to agree with all, averaged (Quinton 2024)",
                                        kind: .combinesGradients { _ in UPGrad() })
}

/// UPGrad (Quinton & Rey 2024, TorchJD's `UPGrad`): each task's gradient, scaled by 1/T,
/// projected onto the dual cone of all of them (so the result conflicts with no task),
/// the projections summed. The weights: Σ_i argmin vᵀGv subject to v ≥ e_i/T.
public struct UPGrad: WeightingCombiner {
    public init() {}

    public func weights(_ grads: [[Float]]) -> [Double] {
        let t = grads.count, g = DualCone.prepared(gram(grads))
        var w = [Double](repeating: 0, count: t)
        for i in 0..<t {
            let u = (0..<t).map { $0 == i ? 1 / Double(t) : 0 }
            for (k, v) in DualCone.project(u, gram: g).enumerated() { w[k] += v }
        }
        return w
    }
}
