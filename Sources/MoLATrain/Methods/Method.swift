import MoLAModel
import MoLAReport
import MoLASupport
import MoLATensor

/// A training method as the rest of the tool asks about it: how its model is built and
/// what the config, the trainer, reports, compare and export need to know of it. Every
/// method is one value, defined in its own file beside this one and listed once in
/// `Method.all`; nothing else switches on a method's name.
public struct Method: Registered {
    /// Whether the model is one backbone with heads, or several (experts, columns).
    public enum Backbones: Sendable { case one, several }
    /// How the model uses low-rank adapters: each task its own (its images see
    /// W + ΔW_task), or all of them mixed per image by a router.
    public enum AdapterUse: Sendable { case perTask, routed }
    /// What the per-image weights a method reports mix.
    public enum Mixture: String, Sendable { case adapters = "adapter", experts = "expert" }
    /// Whether a finished run can be written as plain torchvision models, one per task
    /// (adapters folded in), and whether also as one shared backbone.
    public enum Export: Sendable { case torchvision(sharedBackbone: Bool) }

    /// The config's `method:` value.
    public let name: String
    /// One line of `mola-train --help`.
    public let summary: String
    public var backbones: Backbones = .one
    public var adapters: AdapterUse? = nil
    /// The adapter form the method always uses (nil: the config's `adapters.form`).
    public var fixedAdapterForm: AdapterForm? = nil
    /// Whether a gradient balancer (`weighting:`) applies: one backbone with task heads.
    public var takesBalancer = false
    /// Whether its heads all read one representation (the backbone's features), whose
    /// gradients `rep_grad` combines.
    public var sharesRepresentation = false
    public var mixes: Mixture? = nil
    public var export: Export? = nil
    /// One model per task (the single-task baseline, the reference point of Δm%).
    public var modelPerTask = false
    /// Modules of a task's own that run on its images only (CGC's experts, MTAN's
    /// attention): a data-parallel rank may hold none of a task's images, so their batch
    /// norm cannot be synchronised over the ranks.
    public var taskModules = false
    /// Config keys only some methods read (`experts.count`): present for another method,
    /// they are an error naming the methods that read them.
    public var ownKeys: Set<String> = []
    /// Keys this method refuses although others read them, with the reason.
    public var refusedKeys: [String: String] = [:]
    /// A check of the method's own settings: the key path at fault, the message, the fix.
    public var check: @Sendable (TrainConfig) -> (key: String, message: String, fix: String?)? = { _ in nil }
    /// Builds the model (its parameters registered, not yet allocated).
    public let build: @Sendable (ModelRecipe) -> any TaskModel

    public init(name: String, summary: String, build: @escaping @Sendable (ModelRecipe) -> any TaskModel) {
        self.name = name
        self.summary = summary
        self.build = build
    }

    /// The method's place in compare tables (the order of `all`).
    public var tableRank: Int { Self.all.firstIndex(of: self) ?? Self.all.count }
}

/// What a method builds its model from: the config, the data's shape and classes, and the
/// store the parameters go into.
public struct ModelRecipe {
    public let config: TrainConfig
    public let input: FeatureShape
    /// One entry per head (per task).
    public let classes: [Int]
    /// Adapters per adapted layer (K, the task count).
    public let adapterCount: Int
    public let store: ParameterStore

    /// The config's adapter settings, with the method's defaults for where they sit (the
    /// reference: MoLA-Grad also adapts the stem, MoLA-Router the 1×1 shortcut convs).
    public func adapters(stem: Bool, shortcuts: Bool, form: AdapterForm? = nil) -> AdapterConfig {
        let a = config.adapters
        return AdapterConfig(count: adapterCount, ranks: a.ranks, alpha: a.alpha, stages: a.stages, stem: a.stem ?? stem,
                             shortcuts: a.shortcuts ?? shortcuts, form: form ?? a.form ?? .factorised)
    }

    /// The config's backbone (a ResNet or ShuffleNet V2), with these adapters.
    public func backbone(adapters: AdapterConfig?) -> any Backbone {
        let taskNorms = config.batchNorm == .perTask ? classes.count : nil
        return config.backbone.name == "shufflenet-v2"
            ? ShuffleNetV2(store, config: config.shuffleNetConfig, input: input, adapters: adapters, taskNorms: taskNorms)
            : ResNet(store, config: config.backboneConfig, input: input, adapters: adapters, taskNorms: taskNorms)
    }
}

/// Builds the network a config names, with its parameters allocated from the seed.
public enum ModelFactory {
    /// `classes`: one entry per head (one per task; a single entry for a single-task model).
    /// `labelKinds`: each head's (nil: all single-label). `engine`: how its kernels run
    /// (default: the machine's).
    public static func make(_ c: TrainConfig, input: FeatureShape, classes: [Int], labelKinds: [LabelKind]? = nil, adapterCount: Int,
                            engine: Engine = .default) -> any TaskModel {
        let store = ParameterStore(engine: engine)
        let model = c.method.build(ModelRecipe(config: c, input: input, classes: classes, adapterCount: adapterCount, store: store))
        if let labelKinds { model.heads.labelKinds = labelKinds }
        store.allocate(seed: c.seed)
        return model
    }
}

extension Comparison {
    /// The comparison of finished runs with rows in the registry's order and Δm% against
    /// the method that trains one model per task.
    public static func of(runs: [String]) throws -> Comparison {
        try Comparison(runDirectories: runs, rank: { Method.named($0)?.tableRank ?? Method.all.count },
                       baseline: Method.all.first(where: \.modelPerTask)?.name)
    }
}
