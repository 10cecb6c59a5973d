import MoLAModel

extension Method {
    /// MTAN (Liu et al. 2019): after every stage of the shared ResNet, each task's own
    /// attention module masks the stage's features; its head reads its masked features.
    public static let mtan: Method = {
        var m = Method(name: "mtan", summary: "a shared ResNet, each task's own attention masks per stage") { r in
            MTANClassifier(store: r.store, backbone: ResNet(r.store, config: r.config.backboneConfig, input: r.input,
                                                            taskNorms: r.config.batchNorm == .perTask ? r.classes.count : nil),
                           classes: r.classes)
        }
        m.takesBalancer = true
        m.taskModules = true
        m.check = { c in
            c.backbone.name == "shufflenet-v2" ? ("backbone.name", "mtan attends to the stages of a ResNet", "use a resnet backbone") : nil
        }
        return m
    }()
}
