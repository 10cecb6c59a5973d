import MoLATensor

/// A backbone and one head per task, trained with the sum over tasks of each task's mean
/// cross-entropy in the batch (as the MoLA reference). Uniform (hard parameter sharing)
/// and single-task models are this without adapters; MoLA-Grad with per-task adapters.
public final class Classifier: SharedRepresentationModel {
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
        return store.engine.measure(.loss) { heads.forward(features, layout: layout) }
    }

    public func lossAndBackward(labels: [Int32], layout: BatchLayout) -> BatchLoss {
        let (loss, dFeatures) = lossAndRepresentationGradient(labels: labels, layout: layout)
        backward(representationGradient: dFeatures)
        return loss
    }

    public func lossAndRepresentationGradient(labels: [Int32], layout: BatchLayout) -> (loss: BatchLoss, gradient: Tensor) {
        store.engine.measure(.loss) {
            let loss = classificationLoss(logits: heads.logits, heads: heads, labels: labels, layout: layout, dLogits: &dLogits)
            return (BatchLoss(classification: loss, auxiliary: 0), heads.backward(dLogits))
        }
    }

    public func backward(representationGradient: Tensor) { backbone.backward(representationGradient) }

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
        (routerHead, decorrelation) = store.registering(as: .router) {
            (LinearLayer(store, name: "router.head", inputs: router.features, outputs: adapters),
             TaskDecorrelation(store, inputs: adapters, projection: projection, temperature: temperature))
        }
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
        let loss = classificationLoss(logits: heads.logits, heads: heads, labels: labels, layout: layout, dLogits: &dLogits)
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

    public func withoutAuxiliaryLoss<T>(_ body: () throws -> T) rethrows -> T {
        let weight = decorrelationWeight
        decorrelationWeight = 0
        defer { decorrelationWeight = weight }
        return try body()
    }
}
