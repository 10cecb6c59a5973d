import MoLAModel

extension Method {
    /// One model per task, each trained alone on its task's images (the reference of Δm%).
    public static let singleTask: Method = {
        var m = Method(name: "single-task", summary: "one model per task (the reference of Δm%)") { r in
            Classifier(store: r.store, backbone: r.backbone(adapters: nil), classes: r.classes)
        }
        m.modelPerTask = true
        return m
    }()
}
