import MoLATensor

/// The multi-expert baselines of the paper's table, one class: full-backbone experts whose
/// pooled features each task mixes with its own gate (computed from the input image
/// average-pooled to at most 8×8), then the task's head.
/// - MMoE: K shared experts, a softmax gate per task.
/// - CGC (PLE's single level): shared experts plus `taskExperts` experts of each task's
///   own, which run on that task's images only; task t's gate mixes the shared and its own.
/// - DSelect-k: MMoE's experts with DSelect-k gates (k-sparse, differentiable).
public final class MMoEClassifier: TaskModel {
    public enum GateKind: Equatable, Sendable {
        case softmax
        case dselect(k: Int, gamma: Float)
    }
    public let store: ParameterStore
    /// Shared experts: every image goes through each.
    public let experts: [ResNet]
    /// Per task, its own experts: only its images go through them.
    public let taskExperts: [[ResNet]]
    let gates: [any ExpertGate]
    public let heads: TaskHeads
    let poolShape: Pooling.Shape?
    let gateInputs: Int
    private var pooledInput = Tensor(zeros: [0])
    private var shared: [Tensor] = []
    private var own: [Int: [Tensor]] = [:]  // task → its experts' features (its rows only)
    private var weights: [[Float]] = []  // per group: rows × its gate's experts
    private var mixed = Tensor(zeros: [0])
    private var dLogits: [Tensor] = []
    private var layout = BatchLayout(tasks: [], training: false)

    public init(store: ParameterStore, config: BackboneConfig, input: FeatureShape, classes: [Int], experts: Int, taskExperts: Int = 0,
                gate: GateKind = .softmax) {
        self.store = store
        self.experts = (0..<experts).map { ResNet(store, name: "expert\($0)", config: config, input: input) }
        self.taskExperts = store.registering(as: .task) {
            classes.indices.map { t in (0..<taskExperts).map { ResNet(store, name: "task\(t)-expert\($0)", config: config, input: input) } }
        }
        let factor = max(1, (max(input.height, input.width) + 7) / 8)
        poolShape = factor > 1 ? Pooling.Shape(batch: 1, height: input.height, width: input.width, channels: input.channels,
                                              kernel: factor, stride: factor) : nil
        let gateInputs = poolShape.map { $0.outHeight * $0.outWidth * input.channels } ?? input.count
        self.gateInputs = gateInputs
        gates = store.registering(as: .gate) { classes.indices.map { t in
            switch gate {
            case .softmax: SoftmaxGate(store, name: "gates.\(t)", inputs: gateInputs, experts: experts + taskExperts)
            case let .dselect(k, gamma): DSelectGate(store, name: "gates.\(t)", inputs: gateInputs, experts: experts + taskExperts, k: k, gamma: gamma)
            }
        } }
        heads = TaskHeads(store, features: self.experts.first?.features ?? self.taskExperts[0][0].features, classes: classes)
    }

    /// Task t's candidates' features at row `row` of its group (image i of the batch).
    private func feature(_ e: Int, task t: Int, image i: Int, row: Int) -> UnsafePointer<Float> {
        let f = heads.features
        return e < experts.count ? shared[e].pointer + i * f : own[t]![e - experts.count].pointer + row * f
    }

    public func forward(_ images: Tensor, layout: BatchLayout) -> [Tensor] {
        self.layout = layout
        let n = layout.count, f = heads.features
        if var shape = poolShape {
            shape.batch = n
            pooledInput.reuse([n, gateInputs])
            Pooling.averageForward(shape, x: images.pointer, y: pooledInput.mutablePointer())
        } else {
            pooledInput = images.reshaped([n, gateInputs])
        }
        shared = experts.map { $0.forward(images, layout: layout) }
        own = [:]
        for g in layout.groups where !taskExperts[g.task].isEmpty {
            let per = images.count / max(1, n)
            var part = Tensor(uninitialized: [g.range.count] + images.shape.dropFirst())
            part.mutablePointer().update(from: images.pointer + g.range.lowerBound * per, count: g.range.count * per)
            let groupLayout = BatchLayout(tasks: Array(repeating: Int32(g.task), count: g.range.count), training: layout.training)
            own[g.task] = taskExperts[g.task].map { $0.forward(part, layout: groupLayout) }
        }
        mixed.reuse([n, f])
        mixed.zero()
        weights = []
        let m = mixed.mutablePointer()
        for g in layout.groups {
            var x = Tensor(uninitialized: [g.range.count, gateInputs])
            x.mutablePointer().update(from: pooledInput.pointer + g.range.lowerBound * gateInputs, count: g.range.count * gateInputs)
            let w = gates[g.task].forward(x)
            let e = gates[g.task].experts
            for (row, i) in g.range.enumerated() {
                for ex in 0..<e { Elementwise.axpy(f, alpha: w[row * e + ex], feature(ex, task: g.task, image: i, row: row), m + i * f, engine: store.engine) }
            }
            weights.append(w)
        }
        return heads.forward(mixed, layout: layout)
    }

    public func lossAndBackward(labels: [Int32], layout: BatchLayout) -> BatchLoss {
        let loss = classificationLoss(logits: heads.logits, heads: heads, labels: labels, layout: layout, dLogits: &dLogits)
        let dMixed = heads.backward(dLogits)
        let f = heads.features
        var dShared = experts.map { _ in Tensor(zeros: [layout.count, f]) }
        for (gi, g) in layout.groups.enumerated() {
            let e = gates[g.task].experts
            var dOwn = taskExperts[g.task].map { _ in Tensor(zeros: [g.range.count, f]) }
            var dw = [Float](repeating: 0, count: g.range.count * e)
            for (row, i) in g.range.enumerated() {
                for ex in 0..<e {
                    let into = ex < experts.count ? dShared[ex].mutablePointer() + i * f : dOwn[ex - experts.count].mutablePointer() + row * f
                    Elementwise.axpy(f, alpha: weights[gi][row * e + ex], dMixed.pointer + i * f, into, engine: store.engine)
                    let x = feature(ex, task: g.task, image: i, row: row)
                    var dot: Float = 0
                    for c in 0..<f { dot += dMixed.pointer[i * f + c] * x[c] }
                    dw[row * e + ex] = dot
                }
            }
            gates[g.task].backward(dw)  // each task's gate ran once, on its group
            for (j, expert) in taskExperts[g.task].enumerated() { expert.backward(dOwn[j]) }
        }
        for (ex, expert) in experts.enumerated() { expert.backward(dShared[ex]) }
        return BatchLoss(classification: loss, auxiliary: 0)
    }

    /// Per image of the last forward, its task gate's weight on each expert: the shared
    /// ones, then every task's own (zero for other tasks' experts). Batch × experts.
    public var lastGates: Tensor? {
        expertWeightsPerImage(layout: layout, weights: weights, shared: experts.count, perTask: taskExperts.first?.count ?? 0, tasks: taskExperts.count)
    }

    public var convolutions: [(name: String, conv: Conv)] {
        experts.enumerated().flatMap { e, r in r.convolutions.map { ("expert\(e).\($0.name)", $0.conv) } }
            + taskExperts.enumerated().flatMap { t, list in
                list.enumerated().flatMap { e, r in r.convolutions.map { ("task\(t)-expert\(e).\($0.name)", $0.conv) } }
            }
    }
}
