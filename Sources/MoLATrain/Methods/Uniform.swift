import MoLAModel

extension Method {
    /// Hard parameter sharing: one backbone for every task, a head per task.
    public static let uniform: Method = {
        var m = Method(name: "uniform", summary: "hard sharing: one backbone, a head per task") { r in
            Classifier(store: r.store, backbone: r.backbone(adapters: nil), classes: r.classes)
        }
        m.takesBalancer = true
        m.sharesRepresentation = true
        m.export = .torchvision(sharedBackbone: true)
        return m
    }()
}
