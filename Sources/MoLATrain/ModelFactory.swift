import MoLAData
import MoLAModel
import MoLATensor

/// Builds the network a config names, with its parameters allocated from the seed.
public enum ModelFactory {
    /// `classes`: one entry per head (one per task; a single entry for a single-task model).
    public static func make(_ c: TrainConfig, input: FeatureShape, classes: [Int], adapterCount: Int) -> TaskModel {
        let store = ParameterStore()
        // MOLA-NOTES: MoLA-Grad also adapts the stem, MoLA-Router the 1×1 shortcut convs.
        func adapters(stem: Bool, shortcuts: Bool, form: AdapterForm? = nil) -> AdapterConfig {
            AdapterConfig(count: adapterCount, ranks: c.adapters.ranks, alpha: c.adapters.alpha, stages: c.adapters.stages,
                          stem: c.adapters.stem ?? stem, shortcuts: c.adapters.shortcuts ?? shortcuts, form: form ?? c.adapters.form ?? .factorised)
        }
        let model: TaskModel
        let taskNorms = c.batchNorm == .perTask ? classes.count : nil
        func backbone(_ a: AdapterConfig?) -> any Backbone {
            c.backbone.name == "shufflenet-v2"
                ? ShuffleNetV2(store, config: c.shuffleNetConfig, input: input, adapters: a, taskNorms: taskNorms)
                : ResNet(store, config: c.backboneConfig, input: input, adapters: a, taskNorms: taskNorms)
        }
        switch c.method {
        case .uniform, .singleTask:
            model = Classifier(store: store, backbone: backbone(nil), classes: classes)
        case .molaGrad:
            model = Classifier(store: store, backbone: backbone(adapters(stem: true, shortcuts: false)), classes: classes)
        case .molaRouter, .hydraLora:
            // HydraLoRA: MoLA-Router's router and adapter placement, A shared per layer, no TwD.
            let hydra = c.method == .hydraLora
            let a = adapters(stem: false, shortcuts: true, form: hydra ? .sharedA : nil)
            let routerConfig = BackboneConfig(stemWidth: c.router.widths[0], widths: c.router.widths, blocks: c.router.blocks)
            model = RouterClassifier(store: store, backbone: backbone(a),
                                     router: store.registering(as: .router) { ResNet(store, name: "router", config: routerConfig, input: input) }, classes: classes,
                                     adapters: adapterCount, decorrelationWeight: hydra ? 0 : c.router.twdWeight, temperature: c.router.temperature,
                                     projection: c.router.projection)
        case .mmoe:
            model = MMoEClassifier(store: store, config: c.backboneConfig, input: input, classes: classes, experts: c.experts ?? adapterCount)
        case .cgc:
            model = MMoEClassifier(store: store, config: c.backboneConfig, input: input, classes: classes, experts: c.experts ?? 1,
                                   taskExperts: c.taskExperts ?? 1)
        case .dselectK:
            model = MMoEClassifier(store: store, config: c.backboneConfig, input: input, classes: classes, experts: c.experts ?? 4,
                                   gate: .dselect(k: c.selectK ?? 2, gamma: Float(c.selectGamma ?? 1)))
        case .crossStitch:
            model = CrossStitchClassifier(store: store, config: c.backboneConfig, input: input, classes: classes)
        }
        store.allocate(seed: c.seed)
        return model
    }
}

/// Trainable parameters by role, as the paper's tables count them.
public struct ParameterCounts: Codable, Equatable, Sendable {
    public var total = 0, backbone = 0, adapters = 0, router = 0, heads = 0

    public init() {}

    /// Counts by role: shared and task-specific modules as backbone, routers and gates together.
    public init(_ store: ParameterStore) {
        for e in store.entries where e.trainable {
            let n = e.count
            total += n
            switch e.role {
            case .head: heads += n
            case .router, .gate: router += n
            case .adapter: adapters += n
            case .shared, .task: backbone += n
            }
        }
    }

    static func + (a: Self, b: Self) -> Self {
        var r = a
        r.total += b.total; r.backbone += b.backbone; r.adapters += b.adapters; r.router += b.router; r.heads += b.heads
        return r
    }
}
