import Foundation
import MoLASupport

extension Balancer {
    public static let rlw = Balancer(name: "rlw", summary: "random loss weights each step (Lin 2022)",
                                     kind: .weightsLosses { _ in RandomLossWeights() })
}

/// RLW, random loss weighting (Lin et al., TMLR 2022; LibMTL's `RLW` with its normal
/// draws): each step the weights are the softmax of T standard normal numbers (summing to
/// 1, as in LibMTL), over the tasks in the batch. Drawn from the step's stream: the same on
/// every rank and after a resume.
public struct RandomLossWeights: StatelessLossWeighting {
    public init() {}

    public mutating func weights(losses: [Double?], step: Int, rng: inout RandomGenerator) -> [Double] {
        let z = losses.map { _ in Double(rng.normal()) }
        let present = losses.indices.filter { losses[$0] != nil }
        var w = [Double](repeating: 0, count: losses.count)
        for (k, p) in zip(present, softmax(present.map { z[$0] })) { w[k] = p }
        return w
    }
}
