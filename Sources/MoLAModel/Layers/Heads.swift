import MoLASupport
import MoLATensor

/// One linear classifier per task on pooled features; each task group of the batch goes
/// through its own head (heads are chosen by task id for every method).
public final class TaskHeads {
    public let features: Int
    public let classes: [Int]
    /// Each task's label kind (softmax over classes, or a sigmoid per label); every task
    /// is single-label until the model's builder says otherwise.
    public var labelKinds: [LabelKind]
    public let weights: [ParameterRef], biases: [ParameterRef]
    let store: ParameterStore

    private var input = Tensor(zeros: [0])
    private var layout = BatchLayout(tasks: [], training: false)
    /// Logits of each group, in group order.
    public private(set) var logits: [Tensor] = []
    private var gradInput = Tensor(zeros: [0])

    public init(_ store: ParameterStore, name: String = "heads", features: Int, classes: [Int]) {
        self.store = store
        self.features = features
        self.classes = classes
        labelKinds = classes.map { _ in .single }
        weights = classes.enumerated().map { t, c in
            store.add("\(name).\(t).weight", shape: [features, c], .kaimingUniform(fanIn: features, a: Float(5).squareRoot()), role: .head)
        }
        biases = classes.enumerated().map { t, c in
            store.add("\(name).\(t).bias", shape: [c], .uniform(bound: 1 / Float(features).squareRoot()), decay: true, role: .head)
        }
    }

    /// x: batch×features (pooled). Returns the logits of each group.
    public func forward(_ x: Tensor, layout: BatchLayout) -> [Tensor] {
        input = x
        self.layout = layout
        if logits.count != layout.groups.count { logits = layout.groups.map { _ in Tensor(zeros: [0]) } }
        for (i, g) in layout.groups.enumerated() {
            let c = classes[g.task]
            logits[i].reuse([g.range.count, c])
            Linear.forward(rows: g.range.count, inputs: features, outputs: c, x: x.pointer + g.range.lowerBound * features,
                           w: store.value(weights[g.task]), b: store.value(biases[g.task]), y: logits[i].mutablePointer(), engine: store.engine.threads(1))
        }
        return logits
    }

    /// dLogits: per group, as `forward` returned them.
    public func backward(_ dLogits: [Tensor]) -> Tensor {
        gradInput.reuse(input.shape)
        let dx = gradInput.mutablePointer()
        for (i, g) in layout.groups.enumerated() {
            let c = classes[g.task]
            Linear.backward(rows: g.range.count, inputs: features, outputs: c, x: input.pointer + g.range.lowerBound * features,
                            w: store.value(weights[g.task]), dy: dLogits[i].pointer, dx: dx + g.range.lowerBound * features,
                            dw: store.gradient(weights[g.task]), db: store.gradient(biases[g.task]), engine: store.engine.threads(1))
        }
        input = Tensor(zeros: [0])
        return gradInput
    }
}
