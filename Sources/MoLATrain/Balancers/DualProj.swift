import MoLASupport

extension Balancer {
    public static let dualproj = Balancer(name: "dualproj", summary: "mean gradient projected to agree with every task (Quinton 2024)",
                                          kind: .combinesGradients { _ in DualProj() })
}

/// DualProj (TorchJD's `DualProj`): the mean of the task gradients projected onto the dual
/// cone of all of them. The weights: argmin vᵀGv subject to v ≥ 1/T.
public struct DualProj: WeightingCombiner {
    public init() {}

    public func weights(_ grads: [[Float]]) -> [Double] {
        let t = grads.count
        return DualCone.project(Array(repeating: 1 / Double(t), count: t), gram: DualCone.prepared(gram(grads)))
    }
}
