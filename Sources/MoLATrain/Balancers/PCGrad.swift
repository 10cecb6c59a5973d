import MoLASupport

extension Balancer {
    public static let pcgrad = Balancer(name: "pcgrad", summary: "project off conflicting gradients (Yu 2020)",
                                        kind: .combinesGradients { _ in PCGrad() })
}

/// PCGrad: for each task i, its gradient with, for each other task j in random order, the
/// component along g_j removed when they conflict (g_i·g_j < 0); the results summed.
public struct PCGrad: GradientCombiner {
    public init() {}

    public func combine(_ grads: [[Float]], rng: inout RandomGenerator) -> [Float] {
        var out = [Float](repeating: 0, count: grads.first?.count ?? 0)
        for i in grads.indices {
            var g = grads[i]
            var others = grads.indices.filter { $0 != i }
            for k in stride(from: others.count - 1, to: 0, by: -1) { others.swapAt(k, rng.nextInt(below: k + 1)) }
            for j in others {
                let d = dot(g, grads[j]), n = dot(grads[j], grads[j])
                if d < 0, n > 0 { let f = Float(d / n); for k in g.indices { g[k] -= f * grads[j][k] } }
            }
            for k in out.indices { out[k] += g[k] }
        }
        return out
    }
}
