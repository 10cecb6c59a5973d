import MoLATensor

/// MTAN, the multi-task attention network (Liu, Johns & Davison, CVPR 2019), on a shared
/// ResNet: after every stage s, each task's own attention module turns the stage's output
/// g_s into a soft mask, and the task's features are a_s = mask ⊙ g_s. The module sees g_s
/// and (after the first stage) the task's previous features brought to this stage's size:
///
///   mask_1 = att_1,t(g_1),   mask_s = att_s,t([g_s ; F_{s−1}(a_{s−1})]),   a_s = mask_s ⊙ g_s
///
/// att is 1×1 conv → BN → ReLU → 1×1 conv → BN → sigmoid (to the stage's width, as LibMTL's
/// att_layer for basic blocks). F_s is a shared 3×3 conv (the next stage's stride) → BN →
/// ReLU, the paper's conv block between stages (LibMTL uses a residual block there). Task
/// t's head reads its pooled a_S. Each sample has one task here, so a task's modules run on
/// its task group only; the shared F runs on the whole batch (every group's a_s
/// together), so its batch norm sees the whole batch as the backbone's does.
public final class MTANClassifier: TaskModel {
    public let store: ParameterStore
    public let backbone: ResNet
    public let heads: TaskHeads
    /// Per stage, per task: its attention module.
    let attention: [[AttentionMask]]
    /// Between stages s and s+1: the shared block F_s.
    let blocks: [(conv: Conv, bn: BatchNormLayer)]
    /// Each stage's output shape.
    let shapes: [FeatureShape]

    // The last forward, for backward: per stage the backbone's output, the mask and the
    // task features (all whole-batch, groups in order), and F's outputs.
    private var layout = BatchLayout(tasks: [], training: false)
    private var stageOutputs: [Tensor] = [], masks: [Tensor] = [], features: [Tensor] = [], carried: [Tensor] = []
    private var dLogits: [Tensor] = []

    public init(store: ParameterStore, backbone: ResNet, classes: [Int]) {
        self.store = store
        self.backbone = backbone
        let ranges = backbone.stageBlocks
        shapes = ranges.map { backbone.blocks[$0.upperBound - 1].outShape }
        let shapes = self.shapes
        attention = store.registering(as: .task) {
            shapes.enumerated().map { s, shape in
                classes.indices.map { t in
                    AttentionMask(store, name: "mtan.stage\(s + 1).task\(t)", inChannels: s == 0 ? shape.channels : 2 * shape.channels,
                                  channels: shape.channels)
                }
            }
        }
        blocks = (0..<(shapes.count - 1)).map { s in
            let conv = Conv(store, name: "mtan.block\(s + 1).conv", inChannels: shapes[s].channels, outChannels: shapes[s + 1].channels,
                            kernel: 3, stride: shapes[s].height == shapes[s + 1].height ? 1 : 2, padding: 1)
            return (conv, BatchNormLayer(store, name: "mtan.block\(s + 1).bn", channels: shapes[s + 1].channels, relu: true))
        }
        heads = TaskHeads(store, features: backbone.features, classes: classes)
    }

    var engine: Engine { store.engine }

    public func forward(_ images: Tensor, layout: BatchLayout) -> [Tensor] {
        self.layout = layout
        let n = layout.count
        stageOutputs = []; masks = []; features = []; carried = []
        var h = backbone.forwardStem(images, layout: layout)
        for (s, range) in backbone.stageBlocks.enumerated() {
            h = backbone.forwardBlocks(range, h, layout: layout)
            let shape = shapes[s], rows = n * shape.pixels, c = shape.channels
            stageOutputs.append(h)
            var input = h
            if s > 0 {
                var joined = Tensor(uninitialized: [n, shape.height, shape.width, 2 * c])
                Elementwise.concatChannels(rows: rows, h.pointer, c, carried[s - 1].pointer, c, into: joined.mutablePointer())
                input = joined
            }
            var mask = Tensor(uninitialized: h.shape)
            for g in layout.groups {
                let m = attention[s][g.task].forward(input.rows(g.range), shape: FeatureShape(height: shape.height, width: shape.width, channels: input.shape[3]),
                                                     training: layout.training)
                (mask.mutablePointer() + g.range.lowerBound * shape.count).update(from: m.pointer, count: m.count)
            }
            var a = Tensor(uninitialized: h.shape)
            Elementwise.multiply(rows * c, mask.pointer, h.pointer, into: a.mutablePointer(), engine: engine)
            masks.append(mask)
            features.append(a)
            if s + 1 < shapes.count {
                let (conv, bn) = blocks[s]
                carried.append(bn.forward(conv.forward(a, shape: shape, layout: layout), training: layout.training))
            }
        }
        return engine.measure(.loss) { heads.forward(backbone.pool(features.last!, batch: n), layout: layout) }
    }

    public func lossAndBackward(labels: [Int32], layout: BatchLayout) -> BatchLoss {
        let loss = classificationLoss(logits: heads.logits, heads: heads, labels: labels, layout: layout, dLogits: &dLogits)
        let n = layout.count
        var dFeatures = backbone.unpool(engine.measure(.loss) { heads.backward(dLogits) }).copy()
        var fromLaterStages: Tensor?  // the backbone's gradient into this stage's output
        for s in shapes.indices.reversed() {
            let shape = shapes[s], rows = n * shape.pixels, c = shape.channels
            // a = mask ⊙ g: the mask's gradient dA ⊙ g, g's (first part) dA ⊙ mask.
            var dMask = Tensor(uninitialized: dFeatures.shape), dStage = Tensor(uninitialized: dFeatures.shape)
            Elementwise.multiply(rows * c, dFeatures.pointer, stageOutputs[s].pointer, into: dMask.mutablePointer(), engine: engine)
            Elementwise.multiply(rows * c, dFeatures.pointer, masks[s].pointer, into: dStage.mutablePointer(), engine: engine)
            var dCarried = s > 0 ? Tensor(uninitialized: [n, shape.height, shape.width, c]) : nil
            for g in layout.groups {
                let dInput = attention[s][g.task].backward(dMask.rows(g.range))
                let at = g.range.lowerBound * shape.count
                if s == 0 {
                    Elementwise.add(dInput.count, dStage.pointer + at, dInput.pointer, into: dStage.mutablePointer() + at, engine: engine)
                } else {
                    let groupRows = g.range.count * shape.pixels
                    var dG = Tensor(uninitialized: [groupRows, c])
                    Elementwise.splitChannels(rows: groupRows, dInput.pointer, c, c, a: dG.mutablePointer(), b: dCarried!.mutablePointer() + at)
                    Elementwise.add(dG.count, dStage.pointer + at, dG.pointer, into: dStage.mutablePointer() + at, engine: engine)
                }
            }
            if let later = fromLaterStages {
                Elementwise.add(dStage.count, dStage.pointer, later.pointer, into: dStage.mutablePointer(), engine: engine)
            }
            fromLaterStages = backbone.backwardBlocks(backbone.stageBlocks[s], dStage).copy()
            if let dCarried {
                let (conv, bn) = blocks[s - 1]
                dFeatures = conv.backward(bn.backward(dCarried))!.copy()
            }
        }
        backbone.backwardStem(fromLaterStages!)
        return BatchLoss(classification: loss, auxiliary: 0)
    }

    public var convolutions: [(name: String, conv: Conv)] { backbone.convolutions }
}

/// One task's attention module of one stage: 1×1 conv → BN → ReLU → 1×1 conv → BN →
/// sigmoid, a mask in (0, 1) of the stage's width.
final class AttentionMask {
    let conv1: Conv, bn1: BatchNormLayer, conv2: Conv, bn2: BatchNormLayer
    private var mask = Tensor(zeros: [0])
    private var shape = FeatureShape(height: 0, width: 0, channels: 0)

    init(_ store: ParameterStore, name: String, inChannels: Int, channels: Int) {
        conv1 = Conv(store, name: "\(name).conv1", inChannels: inChannels, outChannels: channels, kernel: 1)
        bn1 = BatchNormLayer(store, name: "\(name).bn1", channels: channels, relu: true)
        conv2 = Conv(store, name: "\(name).conv2", inChannels: channels, outChannels: channels, kernel: 1)
        bn2 = BatchNormLayer(store, name: "\(name).bn2", channels: channels, relu: false)
    }

    /// x: the group's images (shape each) → its mask.
    func forward(_ x: Tensor, shape s: FeatureShape, training: Bool) -> Tensor {
        let n = x.count / s.count
        let layout = BatchLayout(tasks: Array(repeating: 0, count: n), training: training)
        shape = s
        let h = bn1.forward(conv1.forward(x, shape: s, layout: layout), training: training)
        let mid = FeatureShape(height: s.height, width: s.width, channels: conv1.outChannels)
        let z = bn2.forward(conv2.forward(h, shape: mid, layout: layout), training: training)
        mask.reuse(z.shape)
        Sigmoid.forward(z.count, x: z.pointer, y: mask.mutablePointer(), engine: conv1.store.engine)
        return mask
    }

    /// dMask → the gradient of the module's input.
    func backward(_ dMask: Tensor) -> Tensor {
        var dz = Tensor(uninitialized: dMask.shape)
        Sigmoid.backward(dz.count, y: mask.pointer, dy: dMask.pointer, dx: dz.mutablePointer(), engine: conv1.store.engine)
        let dh = conv2.backward(bn2.backward(dz))!
        return conv1.backward(bn1.backward(dh))!
    }
}

extension Tensor {
    /// Images `range` of a batch (N × …) as a tensor of their own.
    func rows(_ range: Range<Int>) -> Tensor {
        let per = count / Swift.max(1, shape[0])
        var out = Tensor(uninitialized: [range.count] + shape.dropFirst())
        out.mutablePointer().update(from: pointer + range.lowerBound * per, count: range.count * per)
        return out
    }

    /// A copy with storage of its own (a layer's buffer is reused at its next call).
    func copy() -> Tensor {
        var c = Tensor(uninitialized: shape)
        c.mutablePointer().update(from: pointer, count: count)
        return c
    }
}
