import Foundation
import MoLASupport

extension Balancer {
    public static let gls = Balancer(name: "gls", summary: "geometric mean of the task losses (Chennupati 2019)",
                                     kind: .weightsLosses { _ in GeometricLossStrategy() })
}

/// GLS, the geometric loss strategy (Chennupati et al., CVPR-W 2019; LibMTL's `GLS`): the
/// objective (Π_t ℓ_t)^(1/T), so task t's loss is weighted by its derivative
/// (Π ℓ)^(1/T) / (T·ℓ_t) — over the tasks in the batch. Equal losses ℓ give each 1/T: the
/// step is 1/T of uniform's, as in LibMTL.
public struct GeometricLossStrategy: StatelessLossWeighting {
    public init() {}

    public mutating func weights(losses: [Double?], step: Int, rng: inout RandomGenerator) -> [Double] {
        let present = losses.compactMap { $0 }.map { max($0, 1e-12) }
        guard !present.isEmpty else { return losses.map { _ in 0 } }
        let t = Double(present.count)
        let mean = exp(present.reduce(0) { $0 + log($1) } / t)  // (Π ℓ)^(1/T), in logs
        return losses.map { l in l.map { mean / (t * max($0, 1e-12)) } ?? 0 }
    }
}
