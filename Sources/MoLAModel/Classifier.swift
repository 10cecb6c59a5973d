import MoLATensor

/// A backbone and one head per task, trained with the sum over tasks of each task's mean
/// cross-entropy in the batch (as the MoLA reference). Uniform (hard parameter sharing)
/// and single-task models are this without adapters; MoLA-Grad with per-task adapters.
public final class Classifier: TaskModel {
    public let store: ParameterStore
    public let backbone: any Backbone
    public let heads: TaskHeads
    private var dLogits: [Tensor] = []

    public init(store: ParameterStore, backbone: any Backbone, classes: [Int]) {
        self.store = store
        self.backbone = backbone
        heads = TaskHeads(store, features: backbone.features, classes: classes)
    }

    public func forward(_ images: Tensor, layout: BatchLayout) -> [Tensor] {
        let features = backbone.forward(images, layout: layout, gates: nil)
        return Profile.measure(.loss) { heads.forward(features, layout: layout) }
    }

    public func lossAndBackward(labels: [Int32], layout: BatchLayout) -> BatchLoss {
        let (loss, dFeatures) = Profile.measure(.loss) {
            let loss = classificationLoss(logits: heads.logits, classes: heads.classes, labels: labels, layout: layout, dLogits: &dLogits)
            return (loss, heads.backward(dLogits))
        }
        backbone.backward(dFeatures)
        return BatchLoss(classification: loss, auxiliary: 0)
    }

    public var convolutions: [(name: String, conv: Conv)] { backbone.convolutions }
}

/// MoLA-Router: a separate small CNN on the raw image gives K logits s per image; the
/// adapters of every adapted layer are mixed by g = softmax(s) (dense, no top-k); the
/// Task-wise Decorrelation loss on s pulls same-task images' routes together. Inference
/// needs no task id (only the heads are chosen by task, as for every method).
public final class RouterClassifier: TaskModel {
    public let store: ParameterStore
    public let backbone: any Backbone
    public let heads: TaskHeads
    public let router: ResNet
    public let routerHead: LinearLayer
    public let decorrelation: TaskDecorrelation
    public var decorrelationWeight: Float
    let gates = AdapterGates()
    private var tasks: [Int32] = []
    private var dLogits: [Tensor] = []

    public init(store: ParameterStore, backbone: any Backbone, router: ResNet, classes: [Int], adapters: Int,
                decorrelationWeight: Float = 0.1, temperature: Double = 1, projection: Int = 32) {
        self.store = store
        self.backbone = backbone
        self.router = router
        routerHead = LinearLayer(store, name: "router.head", inputs: router.features, outputs: adapters)
        decorrelation = TaskDecorrelation(store, inputs: adapters, projection: projection, temperature: temperature)
        self.decorrelationWeight = decorrelationWeight
        heads = TaskHeads(store, features: backbone.features, classes: classes)
    }

    public func forward(_ images: Tensor, layout: BatchLayout) -> [Tensor] {
        let logits = routerHead.forward(router.forward(images, layout: layout))
        let k = routerHead.outputs
        gates.weights.reuse([layout.count, k])
        Softmax.forward(rows: layout.count, classes: k, x: logits.pointer, y: gates.weights.mutablePointer())
        gates.gradient.reuse([layout.count, k])
        gates.gradient.zero()
        tasks = layout.groups.flatMap { g in g.range.map { _ in Int32(g.task) } }
        return heads.forward(backbone.forward(images, layout: layout, gates: gates), layout: layout)
    }

    public func lossAndBackward(labels: [Int32], layout: BatchLayout) -> BatchLoss {
        let loss = classificationLoss(logits: heads.logits, classes: heads.classes, labels: labels, layout: layout, dLogits: &dLogits)
        backbone.backward(heads.backward(dLogits))  // adds dL/dg into gates.gradient
        let k = routerHead.outputs
        var dRouterLogits = Tensor(zeros: [layout.count, k])
        let ds = dRouterLogits.mutablePointer()
        Softmax.backward(rows: layout.count, classes: k, y: gates.weights.pointer, dy: gates.gradient.pointer, dx: ds)
        let twd = decorrelation.lossAndBackward(logits: routerHead.output.pointer, tasks: tasks, scale: decorrelationWeight, ds: ds)
        router.backward(routerHead.backward(dRouterLogits))
        return BatchLoss(classification: loss, auxiliary: Double(decorrelationWeight) * twd)
    }

    public var convolutions: [(name: String, conv: Conv)] { backbone.convolutions }
    public var lastGates: Tensor? { gates.weights }
}

/// MMoE (multi-gate mixture of experts): K full backbones; for task t a softmax gate over
/// the experts, computed from the input image average-pooled to at most 8×8, mixes their
/// pooled features; then task t's head.
public final class MMoEClassifier: TaskModel {
    public let store: ParameterStore
    public let experts: [ResNet]
    public let gates: [LinearLayer]
    public let heads: TaskHeads
    let poolShape: Pooling.Shape?
    let gateInputs: Int
    private var pooledInput = Tensor(zeros: [0])
    private var features: [Tensor] = []
    private var weights: [[Float]] = []  // per group: rows × experts (softmax)
    private var mixed = Tensor(zeros: [0])
    private var dLogits: [Tensor] = []
    private var layout = BatchLayout(tasks: [], training: false)

    public init(store: ParameterStore, config: BackboneConfig, input: FeatureShape, classes: [Int], experts: Int) {
        self.store = store
        self.experts = (0..<experts).map { ResNet(store, name: "expert\($0)", config: config, input: input) }
        let factor = max(1, (max(input.height, input.width) + 7) / 8)
        poolShape = factor > 1 ? Pooling.Shape(batch: 1, height: input.height, width: input.width, channels: input.channels,
                                              kernel: factor, stride: factor) : nil
        let gateInputs = poolShape.map { $0.outHeight * $0.outWidth * input.channels } ?? input.count
        self.gateInputs = gateInputs
        gates = classes.indices.map { LinearLayer(store, name: "gates.\($0)", inputs: gateInputs, outputs: experts) }
        heads = TaskHeads(store, features: config.widths.last!, classes: classes)
    }

    public func forward(_ images: Tensor, layout: BatchLayout) -> [Tensor] {
        self.layout = layout
        let n = layout.count
        if var shape = poolShape {
            shape.batch = n
            pooledInput.reuse([n, gateInputs])
            Pooling.averageForward(shape, x: images.pointer, y: pooledInput.mutablePointer())
        } else {
            pooledInput = images.reshaped([n, gateInputs])
        }
        features = experts.map { $0.forward(images, layout: layout) }
        let f = features[0].shape[1], e = experts.count
        mixed.reuse([n, f])
        mixed.zero()
        weights = []
        for g in layout.groups {
            var x = Tensor(uninitialized: [g.range.count, gateInputs])
            x.mutablePointer().update(from: pooledInput.pointer + g.range.lowerBound * gateInputs, count: g.range.count * gateInputs)
            let logits = gates[g.task].forward(x)
            var w = [Float](repeating: 0, count: g.range.count * e)
            Softmax.forward(rows: g.range.count, classes: e, x: logits.pointer, y: &w)
            let m = mixed.mutablePointer()
            for (row, i) in g.range.enumerated() {
                for ex in 0..<e { Elementwise.axpy(f, alpha: w[row * e + ex], features[ex].pointer + i * f, m + i * f) }
            }
            weights.append(w)
        }
        return heads.forward(mixed, layout: layout)
    }

    public func lossAndBackward(labels: [Int32], layout: BatchLayout) -> BatchLoss {
        let loss = classificationLoss(logits: heads.logits, classes: heads.classes, labels: labels, layout: layout, dLogits: &dLogits)
        let dMixed = heads.backward(dLogits)
        let f = features[0].shape[1], e = experts.count
        var dFeatures = experts.map { _ in Tensor(zeros: [layout.count, f]) }
        for (gi, g) in layout.groups.enumerated() {
            var dw = [Float](repeating: 0, count: g.range.count * e)
            for (row, i) in g.range.enumerated() {
                for ex in 0..<e {
                    Elementwise.axpy(f, alpha: weights[gi][row * e + ex], dMixed.pointer + i * f, dFeatures[ex].mutablePointer() + i * f)
                    var dot: Float = 0
                    for c in 0..<f { dot += dMixed.pointer[i * f + c] * features[ex].pointer[i * f + c] }
                    dw[row * e + ex] = dot
                }
            }
            var dLogitsGate = Tensor(uninitialized: [g.range.count, e])
            weights[gi].withUnsafeBufferPointer { Softmax.backward(rows: g.range.count, classes: e, y: $0.baseAddress!, dy: dw, dx: dLogitsGate.mutablePointer()) }
            _ = gates[g.task].backward(dLogitsGate)  // each task's gate ran once, on its group
        }
        for (ex, expert) in experts.enumerated() { expert.backward(dFeatures[ex]) }
        return BatchLoss(classification: loss, auxiliary: 0)
    }

    public var convolutions: [(name: String, conv: Conv)] {
        experts.enumerated().flatMap { e, r in r.convolutions.map { ("expert\(e).\($0.name)", $0.conv) } }
    }
}
