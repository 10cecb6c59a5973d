import MoLATensor

/// PLE, progressive layered extraction (Tang et al., RecSys 2020), as LibMTL builds it on a
/// ResNet: CGC at every level, the levels being the stem and each stage. Every expert is a
/// whole ResNet run one level at a time. At level ℓ each task's rows go through the shared
/// experts' level ℓ and their own task's experts' level ℓ, and the task's gate of that
/// level mixes the outputs into the rows' input of level ℓ + 1; after the last level the
/// mixed map is pooled for the task's head. A task's gate reads its rows' input to the
/// level, average-pooled to at most 8×8 (as MMoE's gates here; LibMTL's read it whole), so
/// the gates of later levels learn from the loss through the maps they read.
///
/// LibMTL's form, which has no shared gate: each image follows its own task's path (the
/// paper's shared gates feed a second, shared path through the levels). A task's experts
/// see only its images, as CGC's.
public final class PLEClassifier: TaskModel {
    public let store: ParameterStore
    /// Shared experts: every image goes through each, level by level.
    public let experts: [ResNet]
    /// Per task, its own experts: only its images go through them.
    public let taskExperts: [[ResNet]]
    /// Per task, per level, its gate over the shared experts and its own.
    let gates: [[SoftmaxGate]]
    public let heads: TaskHeads
    /// Per level: the shape of its input (the image, then the previous level's output) and
    /// the pooling of a gate's input (nil: the map is at most 8×8 already).
    let levelInputs: [FeatureShape]
    let gatePooling: [Pooling.Shape?]
    let finalShape: FeatureShape

    private var inputs: [Tensor] = []  // per level, the batch's input to it (level 0: the images)
    private var shared: [[Tensor]] = []  // per level, per shared expert: its output on the batch
    private var own: [[Int: [Tensor]]] = []  // per level, task → its experts' outputs on its rows
    private var weights: [[[Float]]] = []  // per level, per group: rows × experts of its gate
    private var pooled = Tensor(zeros: [0])
    private var dLogits: [Tensor] = []
    private var layout = BatchLayout(tasks: [], training: false)

    public init(store: ParameterStore, config: BackboneConfig, input: FeatureShape, classes: [Int], experts: Int, taskExperts: Int) {
        self.store = store
        self.experts = (0..<experts).map { ResNet(store, name: "expert\($0)", config: config, input: input) }
        self.taskExperts = store.registering(as: .task) {
            classes.indices.map { t in (0..<taskExperts).map { ResNet(store, name: "task\(t)-expert\($0)", config: config, input: input) } }
        }
        let outputs = (self.experts.first ?? self.taskExperts[0][0]).levelShapes
        levelInputs = [input] + outputs.dropLast()
        finalShape = outputs.last!
        gatePooling = levelInputs.map { s in
            let factor = max(1, (max(s.height, s.width) + 7) / 8)
            return factor > 1 ? Pooling.Shape(batch: 1, height: s.height, width: s.width, channels: s.channels, kernel: factor, stride: factor) : nil
        }
        let gateInputs = zip(levelInputs, gatePooling).map { s, p in p.map { $0.outHeight * $0.outWidth * s.channels } ?? s.count }
        gates = store.registering(as: .gate) {
            classes.indices.map { t in
                gateInputs.enumerated().map { level, n in
                    SoftmaxGate(store, name: "gates.\(t).level\(level)", inputs: n, experts: experts + taskExperts)
                }
            }
        }
        heads = TaskHeads(store, features: finalShape.channels, classes: classes)
    }

    var levels: Int { levelInputs.count }

    /// The shape a level's experts output (the next level's input, or the pooled map).
    private func outputShape(_ level: Int) -> FeatureShape { level + 1 < levels ? levelInputs[level + 1] : finalShape }

    /// Expert `e`'s level `level` on `x` (the stem at level 0, else a stage).
    private func forward(_ expert: ResNet, level: Int, _ x: Tensor, layout: BatchLayout) -> Tensor {
        level == 0 ? expert.forwardStem(x, layout: layout) : expert.forwardBlocks(expert.stageBlocks[level - 1], x, layout: layout)
    }

    /// Its backward: the gradient of the level's input (nil at level 0: the images need none).
    private func backward(_ expert: ResNet, level: Int, _ dy: Tensor) -> Tensor? {
        if level == 0 { expert.backwardStem(dy); return nil }
        return expert.backwardBlocks(expert.stageBlocks[level - 1], dy)
    }

    /// Rows `range` of a batch-major tensor, as a tensor of their own.
    private func rows(_ x: Tensor, _ range: Range<Int>, shape: FeatureShape) -> Tensor {
        var part = Tensor(uninitialized: [range.count, shape.height, shape.width, shape.channels])
        part.mutablePointer().update(from: x.pointer + range.lowerBound * shape.count, count: range.count * shape.count)
        return part
    }

    /// A gate's input: the rows' map average-pooled to at most 8×8, flattened.
    private func gateInput(_ x: Tensor, level: Int, rows n: Int) -> Tensor {
        guard var shape = gatePooling[level] else { return x.reshaped([n, levelInputs[level].count]) }
        shape.batch = n
        var out = Tensor(uninitialized: [n, shape.outHeight * shape.outWidth * shape.channels])
        Pooling.averageForward(shape, x: x.pointer, y: out.mutablePointer())
        return out
    }

    public func forward(_ images: Tensor, layout: BatchLayout) -> [Tensor] {
        self.layout = layout
        let n = layout.count
        inputs = [images]
        shared = []; own = []; weights = []
        var x = images
        for level in 0..<levels {
            let inShape = levelInputs[level], outShape = outputShape(level)
            shared.append(experts.map { forward($0, level: level, x, layout: layout) })
            var ownHere: [Int: [Tensor]] = [:], weightsHere: [[Float]] = []
            var next = Tensor(zeros: [n, outShape.height, outShape.width, outShape.channels])
            let m = next.mutablePointer(), per = outShape.count
            for g in layout.groups {
                let part = rows(x, g.range, shape: inShape)
                let groupLayout = BatchLayout(tasks: Array(repeating: Int32(g.task), count: g.range.count), training: layout.training)
                let mine = taskExperts[g.task].map { forward($0, level: level, part, layout: groupLayout) }
                ownHere[g.task] = mine
                let gate = gates[g.task][level]
                let w = gate.forward(gateInput(part, level: level, rows: g.range.count))
                for (row, i) in g.range.enumerated() {
                    for e in 0..<gate.experts {
                        let source = e < experts.count ? shared.last![e].pointer + i * per : mine[e - experts.count].pointer + row * per
                        Elementwise.axpy(per, alpha: w[row * gate.experts + e], source, m + i * per, engine: store.engine)
                    }
                }
                weightsHere.append(w)
            }
            own.append(ownHere)
            weights.append(weightsHere)
            x = next
            if level + 1 < levels { inputs.append(next) }
        }
        pooled.reuse([n, finalShape.channels])
        Pooling.globalAverageForward(batch: n, pixels: finalShape.pixels, channels: finalShape.channels, x: x.pointer, y: pooled.mutablePointer())
        return heads.forward(pooled, layout: layout)
    }

    public func lossAndBackward(labels: [Int32], layout: BatchLayout) -> BatchLoss {
        let loss = classificationLoss(logits: heads.logits, heads: heads, labels: labels, layout: layout, dLogits: &dLogits)
        let dPooled = heads.backward(dLogits)
        let n = layout.count
        var dy = Tensor(uninitialized: [n, finalShape.height, finalShape.width, finalShape.channels])
        Pooling.globalAverageBackward(batch: n, pixels: finalShape.pixels, channels: finalShape.channels, dy: dPooled.pointer, dx: dy.mutablePointer())
        for level in (0..<levels).reversed() {
            let inShape = levelInputs[level], outShape = outputShape(level), per = outShape.count
            var dShared = experts.map { _ in Tensor(zeros: [n, outShape.height, outShape.width, outShape.channels]) }
            var dx = level > 0 ? Tensor(zeros: [n, inShape.height, inShape.width, inShape.channels]) : nil
            for (gi, g) in layout.groups.enumerated() {
                let gate = gates[g.task][level], e = gate.experts, w = weights[level][gi], mine = own[level][g.task] ?? []
                var dOwn = mine.map { Tensor(zeros: $0.shape) }
                var dw = [Float](repeating: 0, count: g.range.count * e)
                for (row, i) in g.range.enumerated() {
                    let d = dy.pointer + i * per
                    for ex in 0..<e {
                        let (into, source) = ex < experts.count
                            ? (dShared[ex].mutablePointer() + i * per, shared[level][ex].pointer + i * per)
                            : (dOwn[ex - experts.count].mutablePointer() + row * per, mine[ex - experts.count].pointer + row * per)
                        Elementwise.axpy(per, alpha: w[row * e + ex], d, into, engine: store.engine)
                        var dot: Float = 0
                        for c in 0..<per { dot += d[c] * source[c] }
                        dw[row * e + ex] = dot
                    }
                }
                let dGateInput = gate.backwardToInput(dw)
                for (j, expert) in taskExperts[g.task].enumerated() {
                    guard let dPart = backward(expert, level: level, dOwn[j]), dx != nil else { continue }
                    Elementwise.axpy(dPart.count, alpha: 1, dPart.pointer, dx!.mutablePointer() + g.range.lowerBound * inShape.count, engine: store.engine)
                }
                guard dx != nil else { continue }
                let into = dx!.mutablePointer() + g.range.lowerBound * inShape.count
                if var shape = gatePooling[level] {
                    shape.batch = g.range.count
                    var dPart = Tensor(uninitialized: [g.range.count * inShape.count])
                    Pooling.averageBackward(shape, dy: dGateInput.pointer, dx: dPart.mutablePointer())
                    Elementwise.axpy(dPart.count, alpha: 1, dPart.pointer, into, engine: store.engine)
                } else {
                    Elementwise.axpy(g.range.count * inShape.count, alpha: 1, dGateInput.pointer, into, engine: store.engine)
                }
            }
            for (ex, expert) in experts.enumerated() {
                guard let dPart = backward(expert, level: level, dShared[ex]), dx != nil else { continue }
                Elementwise.axpy(dPart.count, alpha: 1, dPart.pointer, dx!.mutablePointer(), engine: store.engine)
            }
            if let dx { dy = dx }
        }
        return BatchLoss(classification: loss, auxiliary: 0)
    }

    /// Per image of the last forward, its task's last gate's weight on each expert: the
    /// shared ones, then every task's own (zero for other tasks' experts). Batch × experts.
    public var lastGates: Tensor? {
        weights.last.map { expertWeightsPerImage(layout: layout, weights: $0, shared: experts.count, perTask: taskExperts.first?.count ?? 0, tasks: taskExperts.count) }
    }

    public var convolutions: [(name: String, conv: Conv)] {
        experts.enumerated().flatMap { e, r in r.convolutions.map { ("expert\(e).\($0.name)", $0.conv) } }
            + taskExperts.enumerated().flatMap { t, list in
                list.enumerated().flatMap { e, r in r.convolutions.map { ("task\(t)-expert\(e).\($0.name)", $0.conv) } }
            }
    }
}
