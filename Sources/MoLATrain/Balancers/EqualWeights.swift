import MoLASupport

extension Balancer {
    public static let ew = Balancer(name: "ew", summary: "equal loss weights, uniform's objective named as LibMTL does",
                                    kind: .weightsLosses { _ in EqualWeights() })
}

/// EW: every task's loss weighted 1 — the plain sum, the baseline LibMTL calls EW.
public struct EqualWeights: StatelessLossWeighting {
    public init() {}

    public mutating func weights(losses: [Double?], step: Int, rng: inout RandomGenerator) -> [Double] {
        losses.map { $0 == nil ? 0 : 1 }
    }
}
