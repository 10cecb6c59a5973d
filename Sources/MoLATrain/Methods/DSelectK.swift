import MoLAModel

extension Method {
    /// DSelect-k: MMoE's experts with k-sparse differentiable gates (Hazimeh et al. 2021).
    public static let dselectK: Method = {
        var m = Method(name: "dselect-k", summary: "experts mixed by k-sparse differentiable gates") { r in
            MMoEClassifier(store: r.store, config: r.config.backboneConfig, input: r.input, classes: r.classes,
                           experts: r.config.experts ?? 4,
                           gate: .dselect(k: r.config.selectK ?? 2, gamma: Float(r.config.selectGamma ?? 1)))
        }
        m.backbones = .several
        m.mixes = .experts
        m.ownKeys = ["experts.count", "experts.k", "experts.gamma"]
        m.check = { c in
            let n = c.experts ?? 4
            guard n >= 2, n & (n - 1) == 0 else {
                return ("experts.count", "DSelect-k selects among a power-of-two number of experts; \(n) is not", "use 2, 4, 8 or 16")
            }
            if let k = c.selectK, k > n { return ("experts.k", "k = \(k) selectors for \(n) experts", "use k ≤ experts.count") }
            return nil
        }
        return m
    }()
}
