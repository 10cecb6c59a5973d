import MoLAModel

extension Method {
    /// MMoE: K full-backbone experts (default: one per task), a softmax gate per task.
    public static let mmoe: Method = {
        var m = Method(name: "mmoe", summary: "full-backbone experts, a softmax gate per task (MMoE)") { r in
            MMoEClassifier(store: r.store, config: r.config.backboneConfig, input: r.input, classes: r.classes,
                           experts: r.config.experts ?? r.adapterCount)
        }
        m.backbones = .several
        m.mixes = .experts
        m.ownKeys = ["experts.count"]
        m.check = { c in c.experts == 0 ? ("experts.count", "mmoe needs at least one expert", "use 1 or more") : nil }
        return m
    }()
}
