import MoLATensor

/// A backbone and one head per task, trained with the sum over tasks of each task's mean
/// cross-entropy in the batch (as the MoLA reference). The building block of every
/// method; MoLA-Grad is this with per-task adapters in the backbone.
public final class Classifier {
    public let store: ParameterStore
    public let backbone: ResNet
    public let heads: TaskHeads
    private var dLogits: [Tensor] = []

    public init(store: ParameterStore, backbone: ResNet, classes: [Int]) {
        self.store = store
        self.backbone = backbone
        heads = TaskHeads(store, features: backbone.features, classes: classes)
    }

    /// Logits per task group of the batch.
    public func forward(_ images: Tensor, layout: BatchLayout) -> [Tensor] {
        heads.forward(backbone.forward(images, layout: layout), layout: layout)
    }

    /// Σ_t mean CE_t over the groups, and (training) its gradient into the store.
    /// `labels` in batch order. Returns the loss.
    public func lossAndBackward(labels: [Int32], layout: BatchLayout) -> Double {
        let logits = heads.logits
        if dLogits.count != logits.count { dLogits = logits.map { _ in Tensor(zeros: [0]) } }
        var loss = 0.0
        for (i, g) in layout.groups.enumerated() {
            dLogits[i].reuse(logits[i].shape)
            let c = heads.classes[g.task]
            loss += labels[g.range].withUnsafeBufferPointer { lb in
                CrossEntropy.loss(rows: g.range.count, classes: c, logits: logits[i].pointer, labels: lb.baseAddress!,
                                  dLogits: dLogits[i].mutablePointer())
            }
        }
        backbone.backward(heads.backward(dLogits))
        return loss
    }
}
