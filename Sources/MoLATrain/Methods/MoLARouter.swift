import MoLAModel

extension Method {
    /// MoLA-Router: a small CNN on the image mixes the K adapters of every adapted layer
    /// (dense softmax), trained with the Task-wise Decorrelation loss; inference needs no
    /// task id. Adapts the 1×1 shortcut convs too, not the stem, as the reference.
    public static let molaRouter: Method = {
        var m = Method(name: "mola-router", summary: "MoLA-Router: adapters mixed per image, TwD loss") { r in
            routedAdapters(r, form: nil, decorrelationWeight: r.config.router.twdWeight)
        }
        m.adapters = .routed
        m.mixes = .adapters
        return m
    }()

    /// A backbone whose adapters a router network mixes per image (MoLA-Router, HydraLoRA).
    static func routedAdapters(_ r: ModelRecipe, form: AdapterForm?, decorrelationWeight: Float) -> any TaskModel {
        let c = r.config.router
        let routerShape = BackboneConfig(stemWidth: c.widths[0], widths: c.widths, blocks: c.blocks)
        return RouterClassifier(store: r.store, backbone: r.backbone(adapters: r.adapters(stem: false, shortcuts: true, form: form)),
                                router: r.store.registering(as: .router) { ResNet(r.store, name: "router", config: routerShape, input: r.input) },
                                classes: r.classes, adapters: r.adapterCount, decorrelationWeight: decorrelationWeight,
                                temperature: c.temperature, projection: c.projection)
    }
}
