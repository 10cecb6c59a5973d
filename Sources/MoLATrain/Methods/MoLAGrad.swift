import MoLAModel

extension Method {
    /// MoLA-Grad: the backbone with K = T low-rank adapters per adapted convolution; a
    /// sample's task picks its adapter, so each task's gradient reaches only its own.
    /// Adapts the stem too, as the reference.
    public static let molaGrad: Method = {
        var m = Method(name: "mola-grad", summary: "MoLA-Grad: each task its own low-rank adapters") { r in
            Classifier(store: r.store, backbone: r.backbone(adapters: r.adapters(stem: true, shortcuts: false)), classes: r.classes)
        }
        m.adapters = .perTask
        m.takesBalancer = true
        m.sharesRepresentation = true
        m.export = .torchvision(sharedBackbone: false)
        return m
    }()
}
