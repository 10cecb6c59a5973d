import Foundation
import MoLAData
import MoLAModel
import MoLASupport
import MoLATensor

/// A training run's settings, read from YAML (`configs/*.yaml`). Every key is optional
/// except the data; the defaults are the MoLA paper's MedMNIST recipe scaled to small images.
public struct TrainConfig: Codable, Equatable, Sendable {
    public enum OptimizerKind: String, Codable, CaseIterable, Sendable { case sgd, adamw }
    /// Batch-norm statistics over the whole mixed batch, or per task group (the collapse
    /// remedy: a task's drifting adapter no longer sets the other tasks' statistics).
    public enum BatchNormMode: String, Codable, CaseIterable, Sendable { case shared, perTask = "per-task" }
    /// How the tasks' cross-entropies add up: each task's mean (Σ_t mean CE_t, MoLA-Grad's
    /// in the reference) or weighted by the task's share of the batch (n_t/B: the mean over
    /// all images, the reference's uniform and router path).
    public enum TaskWeighting: String, Codable, CaseIterable, Sendable { case taskMean = "task-mean", proportional }
    /// Which checkpoint is "best": highest validation average accuracy, or lowest validation loss.
    /// What picks the checkpoint the test split is evaluated on: the best validation average
    /// accuracy (the default), the lowest validation loss, or the best mean validation AUC.
    public enum Selection: String, Codable, CaseIterable, Sendable {
        case validationAccuracy = "validation-accuracy", validationLoss = "validation-loss", validationAUC = "validation-auc"
    }

    public struct Data: Codable, Equatable, Sendable {
        /// A manifest (ingested when missing or stale) or a dataset folder: exactly one.
        public var manifest: String?
        public var dataset: String?
    }
    public struct Backbone: Codable, Equatable, Sendable {
        public var name = "resnet-mini"
        public var stemWidth = 16
        public var widths = [16, 32, 64]
        public var blocks = [1, 1, 1]
        /// nil: the 3×3 stem for small images; "imagenet": torchvision's 7×7 stride-2 + max pool.
        public var stem: String?
        /// torchvision-named safetensors weights to start from (`init:`).
        public var initWeights: String?
        /// Bottleneck blocks (resnet50); nil: basic blocks.
        public var bottleneck: Bool?
        /// ShuffleNet V2's last 1×1 conv width (`last_width`; nil for ResNets).
        public var lastWidth: Int?
    }
    public struct Adapters: Codable, Equatable, Sendable {
        /// One rank per stage (a single number applies to all).
        public var ranks = [4, 4, 4]
        public var alpha: Float = 16
        /// Stages (0-based) whose convolutions carry adapters.
        public var stages = [0, 1, 2]
        /// nil: the method's default (MoLA-Grad adapts the stem, MoLA-Router does not).
        public var stem: Bool?
        /// nil: the method's default (MoLA-Router adapts 1×1 shortcut convs, MoLA-Grad not).
        public var shortcuts: Bool?
        /// nil: factorised (kept out of the hash so older runs resume); `conv-lora`: the reference's.
        public var form: AdapterForm?
    }
    public struct Router: Codable, Equatable, Sendable {
        public var widths = [8, 16, 32]
        public var blocks = [1, 1, 1]
        public var twdWeight: Float = 0.1
        public var temperature = 1.0
        public var projection = 32
    }
    public struct Optimizer: Codable, Equatable, Sendable {
        public var kind = OptimizerKind.sgd
        public var learningRate: Float = 0.05
        public var momentum: Float = 0.9
        public var weightDecay: Float = 1e-4
        public var schedule = LearningRateSchedule.Kind.cosine
        public var warmupSteps = 0
    }
    public struct Augment: Codable, Equatable, Sendable {
        public var cropPadding = 0
        public var flip = false
    }

    public var name: String
    public var data = Data()
    /// Task names to train on (default: all of the dataset's).
    public var tasks: [String]?
    /// The method (`Method.all`; default MoLA-Grad).
    public var method = Method.molaGrad
    public var backbone = Backbone()
    public var adapters = Adapters()
    public var router = Router()
    /// Experts (MMoE, DSelect-k; CGC's shared ones). nil: the method's default.
    public var experts: Int?
    /// CGC: experts of each task's own. DSelect-k: k, and the smooth step's width γ.
    public var taskExperts: Int?
    public var selectK: Int?
    public var selectGamma: Double?
    public var optimizer = Optimizer()
    public var epochs = 4
    public var batchSize = 128
    public var seed: UInt64 = 0
    public var threads: Int?
    /// Data-parallel runs (mpirun): batch-norm statistics over the global batch instead of
    /// each rank's share (nil: per rank, as PyTorch DDP).
    public var syncBatchNorm: Bool?
    /// nil: shared (the default, kept out of the config hash so older runs still resume).
    public var batchNorm: BatchNormMode?
    /// nil: task-mean. nil: validation-accuracy. (Defaults kept out of the config hash.)
    public var taskWeighting: TaskWeighting?
    public var selection: Selection?
    /// Task-balanced sampling temperature (`sampling: {temperature: T}`; nil: records in plain
    /// shuffled order, tasks in their own proportions).
    public var samplingTemperature: Double?
    /// A gradient balancer (`Balancer.all`; nil: plain summed gradients).
    public var weighting: Balancer?
    /// `weighting: {name: …, rep_grad: true}`: the combiner works on the tasks' gradients of
    /// the representation the heads share instead of the shared parameters (one backward
    /// through the backbone instead of T). nil: off (kept out of the config hash).
    public var repGrad: Bool?
    public var augment = Augment()
    /// Evaluate on validation (and checkpoint) every this many steps; 0 = once per epoch.
    public var evalEvery = 0
    /// A training record (loss, accuracy over the last N steps) in metrics.jsonl every N
    /// steps (0: none), so curves have shape between evaluations.
    public var logEvery = 10
    /// Stop after this many steps (0 = no limit): short smoke runs and CI.
    public var maxSteps = 0
    /// Output folder (default `runs/<name>`).
    public var output: String?

    public init(name: String) { self.name = name }

    /// SHA-256 of the canonical JSON of everything that changes the numbers: a resumed run
    /// refuses a checkpoint made under another config.
    public var hash: String {
        var c = self
        c.threads = nil
        c.output = nil
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        return Hash.sha256Hex(try! enc.encode(c))
    }

    /// The ShuffleNet V2 this config describes (backbone.name shufflenet-v2).
    public var shuffleNetConfig: ShuffleNetV2.Config {
        ShuffleNetV2.Config(stem: backbone.stemWidth, widths: backbone.widths, repeats: backbone.blocks, last: backbone.lastWidth ?? 1024)
    }

    /// What makes this run a variant of its method, for reports and compare.
    public var variant: String? {
        // The adapter form is a variant only where the method lets the config choose it.
        let formChosen = method.adapters != nil && method.fixedAdapterForm == nil
        let parts = (adapters.form.map { formChosen ? [$0.rawValue] : [] } ?? [])
            + (batchNorm == .perTask ? ["per-task BN"] : []) + (weightingLabel.map { [$0] } ?? [])
            + (samplingTemperature.map { [String(format: "sampling T=%g", $0)] } ?? [])
        return parts.isEmpty ? nil : parts.joined(separator: " + ")
    }

    /// How this run's kernels run: the config's thread count (default: every core, or under
    /// mpirun the rank's share of its node's), and batch norm over all ranks' batches with
    /// `sync_batchnorm: true`. Its Winograd path is chosen for the global batch, whatever
    /// share of it a rank or a task group holds.
    public func engine(parallel: DataParallel?) -> Engine {
        let threads = self.threads ?? (parallel == nil ? Parallel.cores : DataParallel.defaultThreads(cores: Parallel.cores))
        return Engine(threads: threads, pathBatch: batchSize, reduceStatistics: syncBatchNorm == true ? parallel?.statisticsReducer : nil)
    }

    public var backboneConfig: BackboneConfig {
        BackboneConfig(stemWidth: backbone.stemWidth, widths: backbone.widths, blocks: backbone.blocks, imagenetStem: backbone.stem == "imagenet",
                       bottleneck: backbone.bottleneck ?? false)
    }
}

extension TrainConfig {
    /// Reads a config file in one pass: each key is read once, where it is checked (type,
    /// range, what it applies to), and any key nothing read is refused with a did-you-mean.
    /// Every complaint names the file, line and key path.
    public static func load(_ path: String, overrides: [String] = []) throws -> TrainConfig {
        let root = try ConfigValue.load(file: path).resolvingBase().overriding(overrides.map(expandAliases))
        let top = try ConfigSection(root)
        let fallbackName = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        var c = TrainConfig(name: try top.string("name") ?? fallbackName)
        let base = URL(fileURLWithPath: path).deletingLastPathComponent().path
        _ = try top.required("data", hint: "add `data: {manifest: data-manifests/digits-fashion.yaml}` or `data: {dataset: datasets/x}`")
        let data = try top.section("data")
        c.data.manifest = try data.string("manifest")
        c.data.dataset = try data.string("dataset")
        guard (c.data.manifest == nil) != (c.data.dataset == nil) else {
            throw data.owner.error("give exactly one of data.manifest and data.dataset")
        }
        // Relative data paths: against the current folder when they exist there (the usual
        // `mola-train run configs/x.yaml` from the repository root), else against the config.
        func resolve(_ p: String) -> String {
            let e = expandPath(p)
            if e.hasPrefix("/") || FileIO.exists(e) { return e }
            let alt = base + "/" + e
            return FileIO.exists(alt) ? alt : e
        }
        c.data.manifest = c.data.manifest.map(resolve)
        c.data.dataset = c.data.dataset.map(resolve)
        c.tasks = try top.strings("tasks")
        if let m = top.value("method") { c.method = try m.registered(Method.all.map(\.name), Method.named) }
        try c.readBackbone(try top.section("backbone"), resolve: resolve)
        try c.readAdapters(try top.section("adapters"))
        try c.readRouter(try top.section("router"))
        try c.readExperts(top)
        let o = try top.section("optimizer")
        if let kind = try o.choice("name", OptimizerKind.self) {
            c.optimizer.kind = kind
            if kind == .adamw { c.optimizer.learningRate = 1e-3 }
        }
        if let v = try o.double("lr", in: 0...1e9) { c.optimizer.learningRate = Float(v) }
        if let v = try o.double("momentum", in: 0...1) { c.optimizer.momentum = Float(v) }
        if let v = try o.double("weight_decay", in: 0...10) { c.optimizer.weightDecay = Float(v) }
        if let v = o.value("schedule") {
            c.optimizer.schedule = try v.choice(LearningRateSchedule.Kind.self)
            if c.optimizer.schedule == .step { throw v.error("the step schedule needs its own settings; use cosine or constant") }
        }
        if let v = try o.int("warmup_steps", in: 0...10_000_000) { c.optimizer.warmupSteps = v }
        if let v = try top.int("epochs", in: 1...100_000) { c.epochs = v }
        if let v = try top.int("batch_size", in: 1...65536) { c.batchSize = v }
        if let v = try top.int("seed", in: 0...Int.max) { c.seed = UInt64(v) }
        if let v = try top.int("threads", in: 1...256) { c.threads = v }
        if let v = top.value("sync_batchnorm") {
            c.syncBatchNorm = try v.bool()
            if c.syncBatchNorm == true, c.method.taskModules {
                throw v.error("sync_batchnorm cannot run \(c.method)'s modules of a task's own (a rank may hold none of a task's images)")
            }
        }
        if let w = try top.section("loss").choice("task_weighting", TaskWeighting.self) { c.taskWeighting = w == .taskMean ? nil : w }
        if let t = try top.section("sampling").double("temperature", in: 0.01...1e6) { c.samplingTemperature = t }
        if let v = top.value("weighting") { try c.readWeighting(v) }
        if let s = try top.choice("selection", Selection.self) { c.selection = s == .validationAccuracy ? nil : s }
        if let v = top.value("batchnorm") {
            let mode = try v.choice(BatchNormMode.self)
            c.batchNorm = mode == .shared ? nil : mode
            if mode == .perTask, c.syncBatchNorm == true {
                throw v.error("batchnorm: per-task cannot be combined with sync_batchnorm (a rank may hold no rows of a task)")
            }
            if mode == .perTask, c.method.backbones == .several { throw v.error("batchnorm: per-task applies to one shared backbone; \(c.method) has several") }
        }
        let a = try top.section("augment")
        if let v = try a.int("crop_padding", in: 0...64) { c.augment.cropPadding = v }
        if let v = try a.bool("flip") { c.augment.flip = v }
        if let v = try top.int("eval_every", in: 0...10_000_000) { c.evalEvery = v }
        if let v = try top.int("log_every", in: 0...10_000_000) { c.logEvery = v }
        if let v = try top.int("max_steps", in: 0...Int.max) { c.maxSteps = v }
        if let v = try top.string("output") { c.output = expandPath(v) }
        try top.finish()
        if let problem = c.method.check(c) {
            throw (top.owner.valueAt(path: problem.key) ?? top.owner).error(problem.message, fix: problem.fix)
        }
        return c
    }

    private mutating func readBackbone(_ b: ConfigSection, resolve: (String) -> String) throws {
        if let n = b.value("name") {
            backbone.name = try n.string()
            switch backbone.name {
            case "resnet-mini": break
            case "resnet18":
                backbone.stemWidth = 64; backbone.widths = [64, 128, 256, 512]; backbone.blocks = [2, 2, 2, 2]
            case "resnet34", "resnet50":
                backbone.stemWidth = 64; backbone.widths = [64, 128, 256, 512]; backbone.blocks = [3, 4, 6, 3]
                backbone.bottleneck = backbone.name == "resnet50" ? true : nil
            case "shufflenet-v2":
                let v1 = ShuffleNetV2.Config.v1
                backbone.stemWidth = v1.stem; backbone.widths = v1.widths; backbone.blocks = v1.repeats; backbone.lastWidth = v1.last
                if method.backbones == .several { throw n.error("\(method) builds its experts or columns as ResNets", fix: "use a resnet backbone") }
            default: throw n.error("unknown backbone '\(backbone.name)'", fix: "use resnet-mini, resnet18, resnet34, resnet50 or shufflenet-v2")
            }
        }
        if let v = try b.int("stem_width", in: 1...4096) { backbone.stemWidth = v }
        if let v = b.value("widths") { backbone.widths = try v.list().map { try $0.int(in: 1...4096) } }
        if let v = b.value("blocks") { backbone.blocks = try v.list().map { try $0.int(in: 1...64) } }
        if let v = b.value("last_width") {
            guard backbone.name == "shufflenet-v2" else { throw v.error("backbone.last_width is ShuffleNet V2's conv5 width") }
            backbone.lastWidth = try v.int(in: 1...8192)
        }
        if backbone.name == "shufflenet-v2", let odd = backbone.widths.first(where: { $0 % 2 != 0 }) {
            throw b.owner.error("ShuffleNet V2 stage widths must be even (units split them in halves); \(odd) is odd")
        }
        if let v = b.value("stem") {
            let stem = try v.string()
            guard ["cifar", "imagenet"].contains(stem) else { throw v.error("backbone.stem is cifar (3×3, for small images) or imagenet (7×7 stride 2 + max pool)") }
            backbone.stem = stem == "imagenet" ? stem : nil
        }
        if let v = b.value("init") {
            let path = resolve(try v.string())
            guard FileIO.exists(path) else {
                throw v.error("backbone.init: \(path) not found", fix: "convert torchvision weights with scripts/torch-to-safetensors.py")
            }
            backbone.initWeights = path
            if method.backbones == .several { throw v.error("backbone.init loads one backbone; \(method) has several") }
        }
        guard backbone.widths.count == backbone.blocks.count, !backbone.widths.isEmpty else {
            throw b.owner.error("backbone.widths and backbone.blocks need one entry per stage")
        }
    }

    private mutating func readAdapters(_ a: ConfigSection) throws {
        adapters.ranks = Array(repeating: 4, count: backbone.widths.count)
        adapters.stages = Array(backbone.widths.indices)
        if let r = a.value("rank") {
            if let one = try? r.int(in: 1...4096) { adapters.ranks = Array(repeating: one, count: backbone.widths.count) } else {
                adapters.ranks = try r.list().map { try $0.int(in: 1...4096) }
                guard adapters.ranks.count == backbone.widths.count else {
                    throw r.error("adapters.rank lists \(adapters.ranks.count) ranks for \(backbone.widths.count) stages",
                                  fix: "give one rank per stage, or one number for all")
                }
            }
            for (s, rank) in adapters.ranks.enumerated() where rank > backbone.widths[s] {
                throw r.error("rank \(rank) is larger than stage \(s)'s \(backbone.widths[s]) channels",
                              fix: "a low-rank adapter needs rank ≤ channels; lower the rank")
            }
        }
        if let v = try a.double("alpha", in: 0...1e6) { adapters.alpha = Float(v) }
        if let v = a.value("stages") { adapters.stages = try v.list().map { try $0.int(in: 0...(backbone.widths.count - 1)) } }
        if let v = try a.bool("stem") { adapters.stem = v }
        if let v = try a.bool("shortcuts") { adapters.shortcuts = v }
        if let v = a.value("form") {
            let form = try v.choice(AdapterForm.self)
            adapters.form = form == .factorised ? nil : form
            if let fixed = method.fixedAdapterForm, form != fixed {
                throw v.error("\(method)'s adapters are \(fixed.rawValue) (one A per layer)", fix: "remove adapters.form")
            }
        }
    }

    private mutating func readRouter(_ r: ConfigSection) throws {
        if let v = r.value("widths") { router.widths = try v.list().map { try $0.int(in: 1...4096) } }
        if let v = r.value("blocks") { router.blocks = try v.list().map { try $0.int(in: 1...64) } }
        if let v = try r.double("twd_weight", in: 0...1e6) { router.twdWeight = Float(v) }
        if let v = try r.double("temperature", in: 1e-6...1e6) { router.temperature = v }
        if let v = try r.int("projection", in: 1...4096) { router.projection = v }
        guard router.widths.count == router.blocks.count else { throw r.owner.error("router.widths and router.blocks need one entry per stage") }
    }

    /// The experts' settings (`experts:`, and the older `mmoe: {experts: N}`); each key only
    /// for the methods that read it.
    private mutating func readExperts(_ top: ConfigSection) throws {
        if let v = try top.section("mmoe").int("experts", in: 1...64) { experts = v }
        let e = try top.section("experts")
        if let v = try e.int("count", in: 0...64) { experts = v }
        if let v = try e.int("per_task", in: 1...16) { taskExperts = v }
        if let v = try e.int("k", in: 1...64) { selectK = v }
        if let v = try e.double("gamma", in: 1e-3...1e3) { selectGamma = v }
        try refuseKeys(of: top)
    }

    /// Keys only other methods read, and keys this method refuses, are errors naming why.
    private func refuseKeys(of top: ConfigSection) throws {
        for key in Method.methodSpecificKeys where !method.ownKeys.contains(key) {
            guard let v = top.owner.valueAt(path: key), !v.isNull else { continue }
            let readers = Method.all.filter { $0.ownKeys.contains(key) }.map(\.name)
            throw v.error("\(key) applies to \(spoken(readers))", fix: "remove it or use method: \(readers[0])")
        }
        for (key, reason) in method.refusedKeys.sorted(by: { $0.key < $1.key }) {
            guard let v = top.owner.valueAt(path: key), !v.isNull else { continue }
            throw v.error(reason, fix: "remove \(key)")
        }
    }

    /// `--set lr=…` and `--set alpha=…` are short for optimizer.lr and adapters.alpha.
    static func expandAliases(_ assignment: String) -> String {
        for (alias, key) in [("lr=", "optimizer.lr="), ("alpha=", "adapters.alpha=")] where assignment.hasPrefix(alias) {
            return key + assignment.dropFirst(alias.count)
        }
        return assignment
    }

}

func expandPath(_ p: String) -> String {
    (p as NSString).expandingTildeInPath
}

/// "a", "a and b", "a, b and c".
func spoken(_ items: [String]) -> String {
    items.count <= 1 ? items.joined() : items.dropLast().joined(separator: ", ") + " and " + items.last!
}
