import MoLAModel

extension Method {
    /// CGC (PLE's customised gate control): shared experts plus experts of each task's own,
    /// which see only that task's images; each task's gate mixes the shared and its own.
    public static let cgc: Method = {
        var m = Method(name: "cgc", summary: "shared experts and each task's own, gated per task") { r in
            MMoEClassifier(store: r.store, config: r.config.backboneConfig, input: r.input, classes: r.classes,
                           experts: r.config.experts ?? 1, taskExperts: r.config.taskExperts ?? 1)
        }
        m.backbones = .several
        m.mixes = .experts
        m.taskModules = true
        m.ownKeys = ["experts.count", "experts.per_task"]
        return m
    }()
}
