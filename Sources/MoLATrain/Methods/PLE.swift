import MoLAModel

extension Method {
    /// PLE: CGC at every level of the backbone (the stem and each stage), each task's rows
    /// gated through the shared experts' level and its own experts' level in turn.
    public static let ple: Method = {
        var m = Method(name: "ple", summary: "CGC at every level: shared and per-task experts, gated per task and level") { r in
            PLEClassifier(store: r.store, config: r.config.backboneConfig, input: r.input, classes: r.classes,
                          experts: r.config.experts ?? 1, taskExperts: r.config.taskExperts ?? 1)
        }
        m.backbones = .several
        m.mixes = .experts
        m.taskModules = true
        m.ownKeys = ["experts.count", "experts.per_task"]
        return m
    }()
}
