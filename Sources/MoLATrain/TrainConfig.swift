import Foundation
import MoLAData
import MoLAModel
import MoLASupport
import MoLATensor

/// A training run's settings, read from YAML (`configs/*.yaml`). Every key is optional
/// except the data; the defaults are MOLA-NOTES' MedMNIST recipe scaled to small images.
public struct TrainConfig: Codable, Equatable, Sendable {
    public enum Method: String, Codable, CaseIterable, Sendable {
        case uniform, singleTask = "single-task", molaGrad = "mola-grad", molaRouter = "mola-router", mmoe
        /// The paper's table's other baselines: shared + task experts (PLE's CGC), DSelect-k
        /// gates, one column per task with learned mixing, and HydraLoRA-style adapters (one
        /// A per layer, a B per adapter) mixed by a router trained without task labels.
        case cgc, dselectK = "dselect-k", crossStitch = "cross-stitch", hydraLora = "hydra-lora"
        /// Methods built from several ResNet backbones (experts or columns).
        public var severalBackbones: Bool { [.mmoe, .cgc, .dselectK, .crossStitch].contains(self) }
    }
    public enum OptimizerKind: String, Codable, CaseIterable, Sendable { case sgd, adamw }
    /// Batch-norm statistics over the whole mixed batch, or per task group (the collapse
    /// remedy: a task's drifting adapter no longer sets the other tasks' statistics).
    public enum BatchNormMode: String, Codable, CaseIterable, Sendable { case shared, perTask = "per-task" }
    /// How the tasks' cross-entropies add up: each task's mean (Σ_t mean CE_t, MoLA-Grad's
    /// in the reference) or weighted by the task's share of the batch (n_t/B: the mean over
    /// all images, the reference's uniform and router path).
    public enum TaskWeighting: String, Codable, CaseIterable, Sendable { case taskMean = "task-mean", proportional }
    /// Which checkpoint is "best": highest validation average accuracy, or lowest validation loss.
    public enum Selection: String, Codable, CaseIterable, Sendable { case validationAccuracy = "validation-accuracy", validationLoss = "validation-loss" }

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
    /// A gradient balancer over the shared parameters (nil: plain summed gradients).
    public var weighting: GradientBalancing.Weighting?
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
        let parts = (adapters.form.map { [.molaGrad, .molaRouter].contains(method) ? [$0.rawValue] : [] } ?? [])
            + (batchNorm == .perTask ? ["per-task BN"] : []) + (weighting.map { [$0.rawValue] } ?? [])
            + (samplingTemperature.map { [String(format: "sampling T=%g", $0)] } ?? [])
        return parts.isEmpty ? nil : parts.joined(separator: " + ")
    }

    public var backboneConfig: BackboneConfig {
        BackboneConfig(stemWidth: backbone.stemWidth, widths: backbone.widths, blocks: backbone.blocks, imagenetStem: backbone.stem == "imagenet",
                       bottleneck: backbone.bottleneck ?? false)
    }
}

extension TrainConfig {
    /// Reads a config file; every complaint names the file, line and key.
    public static func load(_ path: String, overrides: [String] = []) throws -> TrainConfig {
        let root = try ConfigValue.load(file: path).resolvingBase().overriding(overrides.map(expandAliases))
        let top = try root.mapping(allowed: ["name", "data", "tasks", "method", "backbone", "adapters", "router", "mmoe", "experts", "optimizer",
                                             "epochs", "batch_size", "seed", "threads", "augment", "eval_every", "log_every", "max_steps", "output",
                                             "sync_batchnorm", "batchnorm", "loss", "selection", "weighting", "sampling"])
        let fallbackName = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        var c = TrainConfig(name: try top["name"]?.string() ?? fallbackName)
        let base = URL(fileURLWithPath: path).deletingLastPathComponent().path
        let data = try top.required("data", hint: "add `data: {manifest: data-manifests/digits-fashion.yaml}` or `data: {dataset: datasets/x}`")
            .mapping(allowed: ["manifest", "dataset"])
        c.data.manifest = try data["manifest"]?.string()
        c.data.dataset = try data["dataset"]?.string()
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
        c.tasks = try top["tasks"]?.strings()
        if let m = top["method"] { c.method = try m.choice(Method.self) }
        if let b = try top["backbone"]?.mapping(allowed: ["name", "stem_width", "widths", "blocks", "stem", "init", "last_width"]) {
            if let n = b["name"] {
                c.backbone.name = try n.string()
                switch c.backbone.name {
                case "resnet-mini": break
                case "resnet18":
                    c.backbone.stemWidth = 64; c.backbone.widths = [64, 128, 256, 512]; c.backbone.blocks = [2, 2, 2, 2]
                case "resnet34", "resnet50":
                    c.backbone.stemWidth = 64; c.backbone.widths = [64, 128, 256, 512]; c.backbone.blocks = [3, 4, 6, 3]
                    c.backbone.bottleneck = c.backbone.name == "resnet50" ? true : nil
                case "shufflenet-v2":
                    let v1 = ShuffleNetV2.Config.v1
                    c.backbone.stemWidth = v1.stem; c.backbone.widths = v1.widths; c.backbone.blocks = v1.repeats; c.backbone.lastWidth = v1.last
                    if c.method.severalBackbones { throw n.error("\(c.method.rawValue) builds its experts or columns as ResNets", fix: "use a resnet backbone") }
                default: throw n.error("unknown backbone '\(c.backbone.name)'", fix: "use resnet-mini, resnet18, resnet34, resnet50 or shufflenet-v2")
                }
            }
            if let v = b["stem_width"] { c.backbone.stemWidth = try v.int(in: 1...4096) }
            if let v = b["widths"] { c.backbone.widths = try v.list().map { try $0.int(in: 1...4096) } }
            if let v = b["blocks"] { c.backbone.blocks = try v.list().map { try $0.int(in: 1...64) } }
            if let v = b["last_width"] {
                guard c.backbone.name == "shufflenet-v2" else { throw v.error("backbone.last_width is ShuffleNet V2's conv5 width") }
                c.backbone.lastWidth = try v.int(in: 1...8192)
            }
            if c.backbone.name == "shufflenet-v2", let odd = c.backbone.widths.first(where: { $0 % 2 != 0 }) {
                throw b.owner.error("ShuffleNet V2 stage widths must be even (units split them in halves); \(odd) is odd")
            }
            if let v = b["stem"] {
                let stem = try v.string()
                guard ["cifar", "imagenet"].contains(stem) else { throw v.error("backbone.stem is cifar (3×3, for small images) or imagenet (7×7 stride 2 + max pool)") }
                c.backbone.stem = stem == "imagenet" ? stem : nil
            }
            if let v = b["init"] {
                let path = resolve(try v.string())
                guard FileIO.exists(path) else {
                    throw v.error("backbone.init: \(path) not found", fix: "convert torchvision weights with scripts/torch-to-safetensors.py")
                }
                c.backbone.initWeights = path
                if c.method.severalBackbones { throw v.error("backbone.init loads one backbone; \(c.method.rawValue) has several") }
            }
            guard c.backbone.widths.count == c.backbone.blocks.count, !c.backbone.widths.isEmpty else {
                throw b.owner.error("backbone.widths and backbone.blocks need one entry per stage")
            }
        }
        c.adapters.ranks = Array(repeating: 4, count: c.backbone.widths.count)
        c.adapters.stages = Array(c.backbone.widths.indices)
        if let a = try top["adapters"]?.mapping(allowed: ["rank", "alpha", "stages", "stem", "shortcuts", "form"]) {
            if let r = a["rank"] {
                if let one = try? r.int(in: 1...4096) { c.adapters.ranks = Array(repeating: one, count: c.backbone.widths.count) } else {
                    c.adapters.ranks = try r.list().map { try $0.int(in: 1...4096) }
                    guard c.adapters.ranks.count == c.backbone.widths.count else {
                        throw r.error("adapters.rank lists \(c.adapters.ranks.count) ranks for \(c.backbone.widths.count) stages",
                                      fix: "give one rank per stage, or one number for all")
                    }
                }
                for (s, rank) in c.adapters.ranks.enumerated() where rank > c.backbone.widths[s] {
                    throw r.error("rank \(rank) is larger than stage \(s)'s \(c.backbone.widths[s]) channels",
                                  fix: "a low-rank adapter needs rank ≤ channels; lower the rank")
                }
            }
            if let v = a["alpha"] { c.adapters.alpha = Float(try v.double(in: 0...1e6)) }
            if let v = a["stages"] {
                c.adapters.stages = try v.list().map { try $0.int(in: 0...(c.backbone.widths.count - 1)) }
            }
            if let v = a["stem"] { c.adapters.stem = try v.bool() }
            if let v = a["shortcuts"] { c.adapters.shortcuts = try v.bool() }
            if let v = a["form"] {
                let form = try v.choice(AdapterForm.self)
                c.adapters.form = form == .factorised ? nil : form
                if c.method == .hydraLora, form != .sharedA { throw v.error("hydra-lora's adapters are shared-a (one A per layer)", fix: "remove adapters.form") }
            }
        }
        if let r = try top["router"]?.mapping(allowed: ["widths", "blocks", "twd_weight", "temperature", "projection"]) {
            if let v = r["widths"] { c.router.widths = try v.list().map { try $0.int(in: 1...4096) } }
            if let v = r["blocks"] { c.router.blocks = try v.list().map { try $0.int(in: 1...64) } }
            if let v = r["twd_weight"] {
                if c.method == .hydraLora { throw v.error("hydra-lora trains its router without task labels (no TwD)", fix: "remove router.twd_weight, or use mola-router") }
                c.router.twdWeight = Float(try v.double(in: 0...1e6))
            }
            if let v = r["temperature"] { c.router.temperature = try v.double(in: 1e-6...1e6) }
            if let v = r["projection"] { c.router.projection = try v.int(in: 1...4096) }
            guard c.router.widths.count == c.router.blocks.count else { throw r.owner.error("router.widths and router.blocks need one entry per stage") }
        }
        if let m = try top["mmoe"]?.mapping(allowed: ["experts"]) { c.experts = try m["experts"]?.int(in: 1...64) }
        if let e = try top["experts"]?.mapping(allowed: ["count", "per_task", "k", "gamma"]) {
            guard [.mmoe, .cgc, .dselectK].contains(c.method) else {
                throw e.owner.error("experts: applies to mmoe, cgc and dselect-k", fix: "remove it or change the method")
            }
            if let v = e["count"] { c.experts = try v.int(in: c.method == .cgc ? 0...64 : 1...64) }
            if let v = e["per_task"] {
                guard c.method == .cgc else { throw v.error("experts.per_task is CGC's (each task's own experts)", fix: "use method: cgc") }
                c.taskExperts = try v.int(in: 1...16)
            }
            for key in ["k", "gamma"] where e[key] != nil && c.method != .dselectK {
                throw e[key]!.error("experts.\(key) is DSelect-k's", fix: "use method: dselect-k")
            }
            if let v = e["k"] { c.selectK = try v.int(in: 1...64) }
            if let v = e["gamma"] { c.selectGamma = try v.double(in: 1e-3...1e3) }
            if c.method == .dselectK {
                let n = c.experts ?? 4
                guard n >= 2, n & (n - 1) == 0 else { throw (e["count"] ?? e.owner).error("DSelect-k selects among a power-of-two number of experts; \(n) is not", fix: "use 2, 4, 8 or 16") }
                if let k = c.selectK, k > n { throw e["k"]!.error("k = \(k) selectors for \(n) experts", fix: "use k ≤ experts.count") }
            }
        }
        if let o = try top["optimizer"]?.mapping(allowed: ["name", "lr", "momentum", "weight_decay", "schedule", "warmup_steps"]) {
            if let v = o["name"] {
                c.optimizer.kind = try v.choice(OptimizerKind.self)
                if c.optimizer.kind == .adamw { c.optimizer.learningRate = 1e-3 }
            }
            if let v = o["lr"] { c.optimizer.learningRate = Float(try v.double(in: 0...1e9)) }
            if let v = o["momentum"] { c.optimizer.momentum = Float(try v.double(in: 0...1)) }
            if let v = o["weight_decay"] { c.optimizer.weightDecay = Float(try v.double(in: 0...10)) }
            if let v = o["schedule"] {
                c.optimizer.schedule = try v.choice(LearningRateSchedule.Kind.self)
                if c.optimizer.schedule == .step { throw v.error("the step schedule needs its own settings; use cosine or constant") }
            }
            if let v = o["warmup_steps"] { c.optimizer.warmupSteps = try v.int(in: 0...10_000_000) }
        }
        if let v = top["epochs"] { c.epochs = try v.int(in: 1...100_000) }
        if let v = top["batch_size"] { c.batchSize = try v.int(in: 1...65536) }
        if let v = top["seed"] { c.seed = UInt64(try v.int(in: 0...Int.max)) }
        if let v = top["threads"] { c.threads = try v.int(in: 1...256) }
        if let v = top["sync_batchnorm"] {
            c.syncBatchNorm = try v.bool()
            // A rank may hold no image of a task, so its own experts would skip the all-reduce.
            if c.syncBatchNorm == true, c.method == .cgc { throw v.error("sync_batchnorm cannot run CGC's task experts (a rank may hold none of a task's images)") }
        }
        if let l = try top["loss"]?.mapping(allowed: ["task_weighting"]), let v = l["task_weighting"] {
            let w = try v.choice(TaskWeighting.self)
            c.taskWeighting = w == .taskMean ? nil : w
        }
        if let m = try top["sampling"]?.mapping(allowed: ["temperature"]), let v = m["temperature"] {
            c.samplingTemperature = try v.double(in: 0.01...1e6)
        }
        if let v = top["weighting"] {
            c.weighting = try v.choice(GradientBalancing.Weighting.self)
            guard [.uniform, .molaGrad].contains(c.method) else {
                throw v.error("weighting applies to uniform and mola-grad (one backbone, heads per task)", fix: "remove it or change the method")
            }
        }
        if let v = top["selection"] {
            let s = try v.choice(Selection.self)
            c.selection = s == .validationAccuracy ? nil : s
        }
        if let v = top["batchnorm"] {
            let mode = try v.choice(BatchNormMode.self)
            c.batchNorm = mode == .shared ? nil : mode
            if mode == .perTask, c.syncBatchNorm == true {
                throw v.error("batchnorm: per-task cannot be combined with sync_batchnorm (a rank may hold no rows of a task)")
            }
            if mode == .perTask, c.method.severalBackbones { throw v.error("batchnorm: per-task applies to one shared backbone; \(c.method.rawValue) has several") }
        }
        if let a = try top["augment"]?.mapping(allowed: ["crop_padding", "flip"]) {
            if let v = a["crop_padding"] { c.augment.cropPadding = try v.int(in: 0...64) }
            if let v = a["flip"] { c.augment.flip = try v.bool() }
        }
        if let v = top["eval_every"] { c.evalEvery = try v.int(in: 0...10_000_000) }
        if let v = top["log_every"] { c.logEvery = try v.int(in: 0...10_000_000) }
        if let v = top["max_steps"] { c.maxSteps = try v.int(in: 0...Int.max) }
        if let v = top["output"] { c.output = expandPath(try v.string()) }
        return c
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
