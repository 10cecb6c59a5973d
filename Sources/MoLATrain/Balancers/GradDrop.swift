import MoLASupport

extension Balancer {
    public static let graddrop = Balancer(name: "graddrop", summary: "per coordinate, keep one sign by its purity (Chen 2020)",
                                          kind: .combinesGradients { _ in GradDrop() },
                                          notOnRepresentation: "it keeps or drops each coordinate of the gradients by its sign, which no weighting of the task rows expresses")
}

/// Gradient sign dropout (Chen et al., NeurIPS 2020; TorchJD's `GradDrop`, no leak): per
/// coordinate k, the positive sign purity P_k = ½(1 + Σ_t g_tk / Σ_t |g_tk|) and a uniform
/// U_k; if P_k > U_k only the positive parts of the task gradients are kept there, if
/// P_k < U_k only the negative ones, and they are summed. (A coordinate where every
/// gradient is 0 stays 0.)
public struct GradDrop: GradientCombiner {
    public init() {}

    public func combine(_ grads: [[Float]], rng: inout RandomGenerator) -> [Float] {
        combine(grads, uniforms: (0..<(grads.first?.count ?? 0)).map { _ in rng.nextDouble() })
    }

    /// With the coordinates' uniform draws given.
    public func combine(_ grads: [[Float]], uniforms u: [Double]) -> [Float] {
        (0..<u.count).map { k in
            var sum = 0.0, absolute = 0.0
            for g in grads { sum += Double(g[k]); absolute += Double(abs(g[k])) }
            guard absolute > 0 else { return 0 }
            let p = 0.5 * (1 + sum / absolute)
            var out = 0.0
            for g in grads where (p > u[k] && g[k] > 0) || (p < u[k] && g[k] < 0) { out += Double(g[k]) }
            return Float(out)
        }
    }
}
